"""Reference architectures for the seed models in DESIGN.md (PyTorch; imported only by the export stage)."""
