"""Stage 3, train: DeepFaceLab-class DF/LIAE face models in PyTorch.

models/      blocks.py (DFL's encoder/inter/decoder blocks), df.py, liae.py, presets.py, discriminators.py
losses.py    SAEHD losses (DSSIM + MSE on the soft-masked face, mask MSE, eyes/mouth priority)
data.py      faces in memory, DFL random warp/flip/colour augmentation, landmark masks, threaded batches
optim.py     AdaBelief exactly as DFL applies it, with lr-dropout
trainer.py   the loop: checkpoints, previews, progress, stop rules (parts: config.py TrainConfig, device.py
             device/bf16, ddp.py DDP, resume.py consent gate and resume state, gan.py discriminators,
             preview.py previews/SSIM)
swapper.py   `load_swapper(model_dir).swap(faces)`: the contract merge uses
export.py    ONNX export of the swap path, checked against PyTorch with onnxruntime
cli.py       `facedouble train`, `facedouble model info|export`

From the floors below: checkpoints and precision (facedouble.nn), the random warp (facedouble.face.warp),
colour transfer (facedouble.colour).
"""
