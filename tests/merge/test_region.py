"""Region mode (dubbing) and plate parts kept over the swap, on real GRID frames (bbaf2n, 64 px faceset).

Pixels are compared for equality, not closeness: the region and kept-part masks are exactly 0 and 1 beyond
their documented feathers (facedouble.merge.region), and the compositor copies alpha-0 pixels bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedouble.errors import FacedoubleError
from facedouble.face.align import inter_ocular
from facedouble.merge.overrides import FaceSettings, OverrideRule, Overrides
from facedouble.merge.region import (
    MESH_INNER_LIPS,
    MESH_LEFT_EYE,
    MESH_RIGHT_EYE,
    REGIONS,
    parse_plate_parts,
    plate_feather,
    region_polygons,
    region_reach,
)
from tests.merge.test_merge_trained import tiny_model, workspace  # noqa: F401 - the trained-model fixtures
from tests.standin import ShiftSwapper, ellipse_mask, unmarked_hooks

RES = 96


@pytest.fixture(scope="module")
def plan(target):
    from facedouble.merge.pipeline import MergeConfig, load_plan

    return load_plan(ShiftSwapper(RES, "full"), target[0], MergeConfig(), target[1])


def render(model, plan, settings: FaceSettings, index: int) -> np.ndarray:
    """Frame `index` merged with `settings` (through the pipeline's preview path, no marks)."""
    from facedouble.merge.pipeline import MergeConfig, preview

    config = MergeConfig(**{k: v for k, v in vars(settings).items()})
    return preview(model, None, index, unmarked_hooks(), config, plan=plan)


def to_frame(job, points: np.ndarray) -> np.ndarray:
    return points[:, :2] @ job.to_frame[:, :2].T + job.to_frame[:, 2]


def px_per_model_px(job) -> float:
    return float(np.sqrt(abs(np.linalg.det(job.to_frame[:, :2]))))


def signed_distance(polygons: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Frame-space signed distance (+ inside) to the union of `polygons`, from their own fill."""
    canvas = np.zeros(shape[:2], np.uint8)
    for poly in polygons:
        cv2.fillPoly(canvas, [np.round(poly).astype(np.int32).reshape(-1, 1, 2)], 1)
    inside = cv2.distanceTransform(canvas, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - canvas, cv2.DIST_L2, 5)
    return np.where(canvas > 0, inside, -outside)


def inner_lip_area(job) -> float:
    return float(cv2.contourArea(job.mesh[list(MESH_INNER_LIPS)].astype(np.float32)))


def test_settings_validate_and_load_from_toml_and_overrides(tmp_path):
    from facedouble.config import load_toml
    from facedouble.merge.config import MergeConfig

    assert parse_plate_parts("eyes, mouth") == ("mouth", "eyes") and parse_plate_parts("none") == ()
    for bad in ({"region": "nose"}, {"keep_from_plate": "teeth"}):
        with pytest.raises(FacedoubleError, match="region|keep_from_plate"):
            FaceSettings(**bad).validate()
    path = tmp_path / "merge.toml"
    path.write_text('region = "mouth"\nkeep_from_plate = "eyes"\n')
    cfg = load_toml(MergeConfig, path)
    assert (cfg.region, cfg.keep_from_plate) == ("mouth", "eyes")
    rules = [OverrideRule(frames="10-20", keep_from_plate="mouth,eyes"), OverrideRule(frames="15", region="face")]
    ov = Overrides(cfg.face_settings(), rules)
    assert (ov.for_frame(5).keep_from_plate, ov.for_frame(12).keep_from_plate) == ("eyes", "mouth,eyes")
    assert (ov.for_frame(15).region, ov.for_frame(16).region) == ("face", "mouth")
    with pytest.raises(FacedoubleError):
        Overrides(cfg.face_settings(), [OverrideRule(frames="3", region="ears")])


def test_cli_flags_reach_the_config(capsys):
    import facedouble.cli as cli

    assert cli.main(["config", "show", "merge", "--region", "lower-face", "--keep-from-plate", "mouth"]) == 0
    out = capsys.readouterr().out
    assert 'region = "lower-face"' in out and 'keep_from_plate = "mouth"' in out
    assert cli.main(["config", "show", "merge", "--keep-from-plate", "nose"]) != 0


def test_kept_mouth_and_eyes_are_the_plate_and_the_rest_is_the_normal_merge(plan, target_frames):
    model = ShiftSwapper(RES, "full")
    # the two frames with the widest-open mouth (GRID speech): the interior has pixels to keep
    indices = sorted(plan.faces, key=lambda i: inner_lip_area(plan.faces[i][0]))[-2:]
    inside_total = 0
    for index in indices:
        job, plate = plan.faces[index][0], target_frames[index]
        normal = render(model, plan, FaceSettings(), index)
        kept = render(model, plan, FaceSettings(keep_from_plate="mouth,eyes"), index)
        # margin: the ramp's half-width, a model pixel of bilinear warp and one frame pixel of rasterisation
        margin = (plate_feather(job.landmarks) + 1.0) * px_per_model_px(job) + 1.0
        contours = [to_frame(job, job.mesh[list(c)]) for c in (MESH_INNER_LIPS, MESH_RIGHT_EYE, MESH_LEFT_EYE)]
        distance = signed_distance(contours, plate.shape)
        inside, outside = distance > margin, distance < -margin
        assert np.array_equal(kept[inside], plate[inside])
        assert np.array_equal(kept[outside], normal[outside])
        # the kept pixels are ones the normal merge did change
        assert (normal[inside] != plate[inside]).any(axis=-1).mean() > 0.9
        inside_total += int(inside.sum())
        # GRID's eyes are ~8 px tall, thinner than twice the margin: there the kept render is much nearer
        # the plate than the normal merge is, over the whole eyelid opening
        eyes = signed_distance(contours[1:], plate.shape) > 0
        err_kept = np.abs(kept[eyes].astype(int) - plate[eyes]).mean()
        err_normal = np.abs(normal[eyes].astype(int) - plate[eyes]).mean()
        assert err_kept < 0.4 * err_normal, (err_kept, err_normal)
    assert inside_total >= 20  # the open mouth's interior (the eyes are too thin for the margin)


def test_kept_mouth_stays_on_the_plates_mouth_when_the_face_is_scaled(plan, target_frames):
    model = ShiftSwapper(RES, "full")
    index = max(plan.faces, key=lambda i: inner_lip_area(plan.faces[i][0]))
    job, plate = plan.faces[index][0], target_frames[index]
    kept = render(model, plan, FaceSettings(keep_from_plate="mouth", scale=1.15), index)
    normal = render(model, plan, FaceSettings(scale=1.15), index)
    # the crop is shown 1.15x larger, the plate's mouth is where it was: the kept pixels are still the plate's
    margin = (plate_feather(job.landmarks) + 1.0) * px_per_model_px(job) * 1.15 + 1.0
    distance = signed_distance([to_frame(job, job.mesh[list(MESH_INNER_LIPS)])], plate.shape)
    inside = distance > margin
    assert inside.sum() >= 5 and np.array_equal(kept[inside], plate[inside])
    assert (normal[inside] != plate[inside]).any(axis=-1).all()
    outside = distance < -margin
    assert np.array_equal(kept[outside], normal[outside])


@pytest.mark.parametrize("region", [r for r in REGIONS if r != "face"])
def test_region_mode_leaves_the_plate_exact_outside_the_region(plan, target_frames, region):
    model = ShiftSwapper(RES, "full")
    index = 30
    job, plate = plan.faces[index][0], target_frames[index]
    image = render(model, plan, FaceSettings(region=region), index)
    whole = render(model, plan, FaceSettings(), index)
    landmarks = to_frame(job, job.landmarks)
    polygons = region_polygons(region, landmarks, to_frame(job, job.mesh))
    distance = signed_distance(polygons, plate.shape)
    # the region's dilated mask: grown outline + feather (region_reach, in frame pixels) + warp/raster margin
    outside = distance < -(region_reach(region, landmarks) + px_per_model_px(job) + 1.0)
    assert np.array_equal(image[outside], plate[outside])
    changed, whole_changed = (image != plate).any(axis=-1), (whole != plate).any(axis=-1)
    # the model is in the region, as far as the face mask reaches (it bounds every region: the brows of
    # `eyes` straddle the landmark hull's edge)
    core = (distance > 0.1 * inter_ocular(landmarks)) & whole_changed
    assert core.sum() > 50 and changed[core].mean() > 0.9
    # and only there: a part of what the whole-face merge changes
    share = {"mouth": 0.4, "eyes": 0.5, "lower-face": 0.8}[region]
    assert changed.sum() < share * whole_changed.sum()


class TimeShiftSwapper:
    """A dubbing stand-in: the same actor saying something else. For the crop of frame t it returns the
    aligned crop of frame t + `shift` (the same person, another mouth shape), so the geometry the render
    should take on is known: frame t+shift's landmarks in the aligned crop."""

    def __init__(self, crops: dict[bytes, np.ndarray], face_type: str = "full"):
        self.resolution, self.face_type = RES, face_type
        self.model_hash, self.consent = "standin-timeshift", None
        self._crops, self._mask = crops, ellipse_mask(RES)

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.stack([self._crops[f.tobytes()] for f in faces]).astype(np.float32) / 255.0
        return rgb, np.broadcast_to(self._mask, faces.shape[:3]).copy()


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap (points 62-66) over the inter-ocular distance."""
    return float(np.linalg.norm(landmarks[62] - landmarks[66]) / inter_ocular(landmarks))


def test_dubbed_mouth_follows_the_model_and_the_eyes_stay_the_plates(plan, target_frames):
    from facedouble.extract.landmarks import FaceMeshLandmarker
    from facedouble.merge.render import crop_faces

    shift = 8
    crops = {i: crop_faces(target_frames[i], plan.faces[i], RES)[0] for i in plan.faces}
    mapping = {crops[i].tobytes(): crops[i + shift] for i in crops if i + shift in crops}
    model = TimeShiftSwapper(mapping)
    openings = {i: mouth_opening(plan.faces[i][0].landmarks) for i in plan.faces}
    # the frames where the dub's mouth differs most from the plate's (opening and closing)
    candidates = [i for i in openings if i + shift in openings]
    frames = sorted(candidates, key=lambda i: -abs(openings[i + shift] - openings[i]))[:2]
    landmarker = FaceMeshLandmarker()
    try:
        for index in frames:
            job = plan.faces[index][0]
            image = render(model, plan, FaceSettings(region="mouth"), index)
            plate_lm = to_frame(job, job.landmarks)
            # the dub's landmarks in this frame: frame t+shift's aligned points through frame t's placement
            dub_lm = to_frame(job, plan.faces[index + shift][0].landmarks)
            found = landmarker.from_landmarks(image, plate_lm)
            assert found is not None
            got = found.landmarks
            unit = inter_ocular(plate_lm)
            to_dub = np.linalg.norm(got[48:68] - dub_lm[48:68], axis=1).mean() / unit
            to_plate = np.linalg.norm(got[48:68] - plate_lm[48:68], axis=1).mean() / unit
            assert to_dub < 0.6 * to_plate, (index, to_dub, to_plate)
            assert abs(mouth_opening(got) - mouth_opening(dub_lm)) < 0.5 * abs(
                mouth_opening(plate_lm) - mouth_opening(dub_lm))
            # outside the region the face is the plate's: its eyes and brows are found where they were
            assert np.linalg.norm(got[17:48] - plate_lm[17:48], axis=1).mean() / unit < 0.03
    finally:
        landmarker.close()


class ShadedSwapper:
    """The plate's own face under another light, brighter on one side and darker on the other: the demo's
    seam (a global colour transfer matches the mean, not the shading, so each side's edge shows a step)."""

    def __init__(self, strength: float = 0.5):
        self.resolution, self.face_type = RES, "full"
        self.model_hash, self.consent = "standin-shaded", None
        self._gain = 1.0 + np.linspace(-strength / 2, strength / 2, RES, dtype=np.float32)[None, :, None]
        self._mask = ellipse_mask(RES)

    def swap(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.clip(faces.astype(np.float32) / 255.0 * self._gain, 0.0, 1.0)
        return rgb, np.broadcast_to(self._mask, faces.shape[:3]).copy()


def rendered(model, plan, settings: FaceSettings, index: int, frame):
    """The pipeline's Rendered (image and alpha) of one frame."""
    from facedouble.merge.pipeline import Renderer

    renderer = Renderer(model, plan, Overrides(settings), 1)
    try:
        return renderer.submit([frame], [False])[0].result()
    finally:
        renderer.close()


def test_edge_match_removes_the_step_a_shading_mismatch_leaves_at_the_seam(plan, target):
    from facedouble.io.video import open_source
    from facedouble.report.metrics import seam_score, seam_width

    model = ShadedSwapper()
    scores = {0.0: [], 12.0: []}
    for frame in open_source(target[1]):
        if frame.index not in (10, 40, 70):
            continue
        job = plan.faces[frame.index][0]
        width = seam_width(to_frame(job, job.landmarks))
        for depth in scores:
            r = rendered(model, plan, FaceSettings(edge_match=depth), frame.index, frame)
            scores[depth].append(seam_score(r.image, frame.image, r.alpha > 0.5, width))
    before, after = np.mean(scores[0.0]), np.mean(scores[12.0])
    # the seam score (render/plate gradient energy across the mask edge; 1 = as smooth as the plate)
    # (about 1.17 before, 0.93 after on GRID bbaf2n): the fix halves the distance to the plate's smoothness
    assert before > 1.1, scores
    assert abs(after - 1.0) < 0.5 * (before - 1.0), scores


def edge_steps(image: np.ndarray, plate: np.ndarray, alpha: np.ndarray, landmarks: np.ndarray, width: int
               ) -> list[float]:
    """Mean L* of render - plate just inside the mask edge, on the top edge and on each side of the face."""
    def lightness(x: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(x, cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) * 100.0 / 255.0

    edge = alpha > 0.5
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    ys, xs = np.nonzero(edge & (cv2.erode(edge.astype(np.uint8), kernel) == 0))
    dl = (lightness(image) - lightness(plate))[ys, xs]
    cx, cy = landmarks[27:36].mean(0)
    angle = np.degrees(np.arctan2(ys - cy, xs - cx))
    sides = ((angle < -45) & (angle > -135), np.abs(angle) >= 135, np.abs(angle) <= 45)
    return [float(dl[s].mean()) for s in sides]


def test_edge_match_levels_the_seam_of_a_tiny_trained_model(tiny_model, target):  # noqa: F811 - the fixture
    """The demo's seam on a model the train stage made (4 iterations, GRID pwij3p -> bbaf2n): without edge
    matching the face ends brighter on top and darker on the sides than the plate beside it."""
    from facedouble.io.video import open_source
    from facedouble.merge.pipeline import MergeConfig, load_plan
    from facedouble.report.metrics import seam_score, seam_width
    from facedouble.train.swapper import load_swapper

    model = load_swapper(tiny_model, precision="fp32", conv_algo="direct")
    plan = load_plan(model, target[0], MergeConfig(), target[1])
    steps, seams = {0.0: [], 12.0: []}, {0.0: [], 12.0: []}
    for frame in open_source(target[1]):
        if frame.index not in (10, 40, 70):
            continue
        job = plan.faces[frame.index][0]
        landmarks = to_frame(job, job.landmarks)
        width = seam_width(landmarks)
        for depth in steps:
            r = rendered(model, plan, FaceSettings(edge_match=depth), frame.index, frame)
            steps[depth] += edge_steps(r.image, frame.image, r.alpha, landmarks, width)
            seams[depth].append(seam_score(r.image, frame.image, r.alpha > 0.5, width))
    before, after = np.abs(steps[0.0]).mean(), np.abs(steps[12.0]).mean()
    # (3.0 -> 0.2 L* on the AVX-512 machine) the step by side halves at least
    assert before > 1.0 and after < 0.5 * before, steps
    # and the seam score, here dominated by the 4-iteration model's noise texture, does not get worse
    assert np.mean(seams[12.0]) < 1.05 * np.mean(seams[0.0]), seams
