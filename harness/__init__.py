"""tunegate: fine-tune language models and gate their release on evidence."""

__version__ = "0.1.0"
