"""Stage 1: video or image folder -> detected faces -> landmarks -> aligned face crops."""
