"""Stage 4: put the trained face back into every frame of the target clip."""
