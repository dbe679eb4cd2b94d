"""Dataset sources: "mp" (matminer 0.3.9 via pip), "jarvis" (GMTNet pickles, dft_3d), "file"."""
