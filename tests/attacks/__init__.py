"""Attack corpus (data in *.toml, loader in corpus.py)."""
