"""Model backends, one per file, behind the `Backend` contract of `harness.core.api`.

- `registry.py`: spec prefix -> backend (`hf:`, `fake:`, `openai:`); how to add a backend is written there.
- `hf.py`: transformers models, with PEFT and bottleneck adapters (`adapters.py`, `bottleneck.py`).
- `source.py`: resolves transformers specs (embedded name, directory, .gguf, hub id) and hashes files.
- `fake.py`: a deterministic backend for tests that need no model.
- `openai.py`: a model behind an OpenAI-compatible server (`openai:MODEL --base-url URL`).
- `devices.py`: device, dtype and attention kernel of in-process models.
- `llama_cpp_server.py`: llama-cpp-python's server with its echoed prompt logprobs fixed.
"""

from harness.core.fileio import tunegate_home
from harness.models.registry import backend_names, load_backend, register_backend
from harness.models.source import DEFAULT_MODEL, resolve_model

__all__ = ["DEFAULT_MODEL", "backend_names", "load_backend", "register_backend", "resolve_model", "tunegate_home"]
