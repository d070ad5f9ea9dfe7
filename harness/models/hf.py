"""The Hugging Face transformers backend: loglikelihood, rolling loglikelihood and generation.

Speed comes from four things (see benchmarks/): the shared context of a multiple-choice question runs
once with every choice attached as a branch (a 4D "tree" attention mask), a token prefix that many
questions share (a fixed few-shot block, a system prompt) runs once and its keys and values serve them all,
several questions are packed into one row so no pad token is computed, and the output projection runs only
where a score is needed.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from harness.core.api import CAPABILITIES, Backend, GenSettings, Request, Response, UserError, common_prefix
from harness.models.adapters import AdapterInfo, attach, causal_lm, detach, inspect_adapter, is_prompt_learning
from harness.models.devices import Hardware, Placement, needs_device_map, place, torch_dtype
from harness.models.source import TOKENIZER_FILES, WEIGHT_FILES, ModelSource, dir_hash, resolve_model

# bump when scoring code changes what a request returns, so a store's answers from before are not served for the
# same request: 2, a sampled completion seeded per item and drawn alone (f3c785f); 3, sampled completions drawn per
# row (Gumbel-max) in batches, and prompt-learning adapters' padded rows generated at their own positions
SCORING_VERSION = 3


@dataclass
class _Group:
    """One context with its continuations, as token ids."""

    index: int
    context: list[int]
    continuations: list[list[int]]

    @property
    def size(self) -> int:
        return len(self.context) + sum(len(c) for c in self.continuations)


@dataclass
class HFBackend(Backend):
    """A causal LM from transformers, optionally with one PEFT adapter active at a time."""

    name: ClassVar[str] = "hf"
    capabilities = frozenset(CAPABILITIES)  # every one: loglikelihood, rolling, generate, chat template, adapters

    source: ModelSource
    dtype: str = "float32"  # resolved: float32, bfloat16 or float16 (harness.models.devices)
    batch_size: int = 32
    pack_tokens: int = 512  # measured best on 2 cores: longer rows pay more for the dense tree mask
    device: str = "cpu"  # resolved: cpu, mps or cuda:N
    attention: str = "sdpa"  # transformers attn_implementation
    share_prefix: bool = True  # run a token prefix shared by several contexts once and reuse its keys and values
    min_shared_prefix: int = 32  # tokens; a shorter shared prefix is not worth its own forward pass
    device_map: bool = False  # spread over every GPU (a model larger than one); set on load
    _adapter: AdapterInfo | None = None
    _model: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)
    _active: Any = field(default=None, repr=False)  # model with the current adapter applied
    # shared prefixes' keys and values by token ids, for the current adapter only (the engine calls in chunks)
    _prefix_memo: dict[tuple[int, ...], Any] = field(default_factory=dict, repr=False)
    load_seconds: float = 0.0

    @classmethod
    def from_spec(cls, spec: str | None, *, dtype: str = "auto", device: str = "auto", batch_size: int = 32,
                  hardware: Hardware | None = None, share_prefix: bool = True, **options: Any) -> HFBackend:
        """Resolve `spec`, device and dtype and build a lazily loading backend.

        Options meant for other backends (an endpoint's base URL) are refused: they would be silently ignored."""
        foreign = sorted(k for k, v in options.items() if v not in (None, False))
        if foreign:
            raise UserError(f"--{foreign[0].replace('_', '-')} applies to endpoint models (-m openai:MODEL), "
                            f"not to the in-process model {spec or 'smollm2-135m'}", field=f"--{foreign[0].replace('_', '-')}")
        placement = place(device, dtype, hardware)
        return cls(resolve_model(spec), dtype=placement.dtype, device=placement.device,
                   attention=placement.attention, batch_size=batch_size, share_prefix=share_prefix)

    @property
    def placement(self) -> Placement:
        return Placement(self.device, self.dtype, self.attention)

    @property
    def label(self) -> str:
        return f"hf:{self.source.spec}"

    # ---- identity -------------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes answers; computed from file hashes without loading weights."""
        if self.source.hub:
            model_hash = f"hub:{self.source.path}"
        else:
            model_hash = dir_hash(Path(self.source.path), include=WEIGHT_FILES + ("config.json", "generation_config.json"))
        return {"backend": "hf", "model": self.source.spec, "model_hash": model_hash,
                "tokenizer_hash": self.tokenizer_hash(),
                "adapter_hash": self._adapter.hash if self._adapter else None, "dtype": self.dtype,
                # the device type and kernel change the numbers: a CPU answer is never served for a GPU request
                "device": self.placement.kind, "attention": self.attention,
                "scoring_version": SCORING_VERSION}

    def tokenizer_hash(self) -> str:
        if self.source.hub:
            return f"hub:{self.source.path}"
        return dir_hash(Path(self.source.path), include=TOKENIZER_FILES)

    @property
    def adapter(self) -> AdapterInfo | None:
        return self._adapter

    def check_adapter(self, adapter_dir: str) -> None:
        inspect_adapter(Path(adapter_dir))

    def set_adapter(self, adapter_dir: str | None) -> None:
        """Switch to another adapter (or back to the bare base) without reloading the base."""
        info = inspect_adapter(Path(adapter_dir)) if adapter_dir else None
        if self._adapter is not None and self._active is not None:
            # attached (a bottleneck adapter attaches in place, so _active can be the base object itself)
            self._model = detach(self._active)
        self._active = None
        self._adapter = info
        self._prefix_memo.clear()  # computed with the previous adapter

    # ---- loading --------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = _load(AutoTokenizer.from_pretrained, self.source)
            if self._tokenizer.pad_token_id is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
        return self._tokenizer

    @property
    def model(self) -> Any:
        if self._model is None:
            from transformers import AutoModelForCausalLM

            start = time.perf_counter()
            self._model = _load(AutoModelForCausalLM.from_pretrained, self.source, **self._load_options())
            self._model.eval()
            if not self.device_map and self.device != "cpu":
                self._model.to(self.device)
            self.load_seconds += time.perf_counter() - start
        if self._active is None:
            start = time.perf_counter()
            self._active = attach(self._model, self._adapter, self.fingerprint()) \
                if self._adapter else self._model
            self._active.eval()
            self.load_seconds += time.perf_counter() - start
        return self._active

    def _load_options(self, hardware: Hardware | None = None) -> dict[str, Any]:
        """from_pretrained options: dtype, kernel, and device_map="auto" when one GPU cannot hold the weights."""
        options: dict[str, Any] = {"dtype": torch_dtype(self.dtype), "attn_implementation": self.attention}
        if self.device.startswith("cuda") and not self.source.hub:
            weights = sum(p.stat().st_size for p in Path(self.source.path).iterdir()
                          if p.is_file() and p.name.endswith(WEIGHT_FILES))
            self.device_map = needs_device_map(weights, self.placement, hardware or Hardware.probe())
        if self.device_map:
            options["device_map"] = "auto"
        return options

    @property
    def max_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", 2048) or 2048)

    @property
    def _device(self) -> Any:
        return next(self.model.parameters()).device

    # ---- text helpers ---------------------------------------------------------------------------------
    def apply_chat_template(self, user_text: str, system: str | None = None) -> str:
        if not self.tokenizer.chat_template:
            raise UserError(f"model {self.source.spec} has no chat template, but the task sets chat_template: true",
                            field="chat_template")
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user_text}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _prefix_token(self) -> int:
        tok = self.tokenizer
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        # lm-evaluation-harness's split, so per-choice loglikelihoods match it: trailing spaces of the
        # context move to the continuation, and the continuation is whatever the joint encoding adds.
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation, context = context[-spaces:] + continuation, context[:-spaces]
        context_ids = self._encode(context) if context else [self._prefix_token()]
        whole = self._encode(context + continuation) if context else context_ids + self._encode(continuation)
        return context_ids, whole[len(context_ids):]

    # ---- loglikelihood ----------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[Request]) -> list[Response]:
        """Sum of log-probabilities of each continuation given its context."""
        groups = [_Group(i, *self._pair_group(req)) for i, req in enumerate(requests)]
        results: list[Response | None] = [None] * len(requests)
        for group, logliks, greedy, used in self._score_groups(groups):
            results[group.index] = Response(logliks=logliks, is_greedy=greedy,
                                            n_tokens=[len(c) for c in group.continuations], tokens_processed=used)
        return [r for r in results if r is not None]

    def _score_groups(self, groups: list[_Group]):
        """Yield (group, logliks, is_greedy, tokens run) for each group, in the order they finish."""
        limit = self.max_length
        virtual = _virtual_prompt(self.model)
        prefix = _prefix_length(self.model)
        if virtual is not None:  # prompt tuning: its virtual tokens lead every group, and packing still works
            groups = [self._truncate(g, limit - virtual.shape[0]) for g in groups]
            yield from self._score_packed(groups, virtual=virtual)
        elif prefix:  # prefix tuning: every packed token also sees the prefix's keys and values
            yield from self._score_packed([self._truncate(g, limit - prefix) for g in groups], prefix=prefix)
        elif is_prompt_learning(self.model) or self.attention == "flash_attention_2":
            # other prompt learning (PEFT types not placed here): PEFT's own forward; FlashAttention takes no 4D mask
            yield from self._score_padded([self._truncate(g, limit) for g in groups])
        elif self.share_prefix:
            yield from self._score_sharing([self._truncate(g, limit) for g in groups])
        else:
            yield from self._score_packed([self._truncate(g, limit) for g in groups])

    @staticmethod
    def _truncate(group: _Group, limit: int) -> _Group:
        longest = max((len(c) for c in group.continuations), default=0)
        keep = limit - longest
        if len(group.context) > keep:  # drop the oldest context, as lm-evaluation-harness does
            group = _Group(group.index, group.context[-max(keep, 1):], group.continuations)
        return group

    def _score_sharing(self, groups: list[_Group]):
        """Score groups whose contexts share a token prefix with that prefix run once: its keys and values
        precede every packed row of the suffixes (positions shifted by its length), as prefix tuning's do."""
        loose: list[_Group] = []
        for cut, members in _shared_prefixes(groups, self.min_shared_prefix):
            if not cut:
                loose += members
                continue
            cut, kv, ran = self._prefix_kv(members[0].context[:cut])
            if kv is None:
                loose += members
                continue
            by_index = {g.index: g for g in members}
            suffixes = [_Group(g.index, g.context[cut:], g.continuations) for g in members]
            first = True
            for g, logliks, greedy, used in self._score_packed(suffixes, shared=(cut, kv)):
                # the prefix ran once (or earlier): its tokens count for the first group that finishes
                yield by_index[g.index], logliks, greedy, used + (ran if first else 0)
                first = False
        yield from self._score_packed(loose)

    def _prefix_kv(self, tokens: list[int]) -> tuple[int, list[tuple[Any, Any]] | None, int]:
        """(length, each layer's (keys, values), tokens run) for a prefix of `tokens` at positions 0..n-1.

        A prefix computed by an earlier call serves when it covers at least half of `tokens` (the engine scores
        a task in chunks, and each chunk finds the same few-shot block). The keys and values are None where the
        model's cache is not one plain tensor pair per layer (sliding-window or linear-attention layers)."""
        import torch
        from transformers.cache_utils import DynamicLayer

        known = max((k for k in self._prefix_memo if 2 * len(k) >= len(tokens) and tuple(tokens[:len(k)]) == k),
                    key=len, default=None)
        if known is not None:
            return len(known), self._prefix_memo[known], 0
        causal = causal_lm(self.model)
        with torch.inference_mode():
            ids = torch.tensor([tokens], device=self._device)
            out = causal.get_decoder()(input_ids=ids, position_ids=torch.arange(len(tokens), device=ids.device)[None],
                                       use_cache=True)
        # transformers 5.x renamed the output `past_key_values` to `cache`
        cache = out.get("cache", None) or out.get("past_key_values", None)
        layers = getattr(cache, "layers", None)
        if not layers or any(type(layer) is not DynamicLayer for layer in layers):
            return len(tokens), None, 0
        while len(self._prefix_memo) >= _PREFIX_MEMO:  # oldest first: a suite's tasks come one after another
            del self._prefix_memo[next(iter(self._prefix_memo))]
        kv = self._prefix_memo[tuple(tokens)] = [(layer.keys, layer.values) for layer in layers]
        return len(tokens), kv, len(tokens)

    def _score_packed(self, groups: list[_Group], virtual: Any = None, prefix: int = 0,
                      shared: tuple[int, list[tuple[Any, Any]]] | None = None):
        """Pack groups into rows; `virtual` (prompt tuning's [v, hidden] embeddings) leads each group's context,
        or a prefix-tuning adapter's `prefix` keys and values (PEFT's `get_prompt` cache) precede the row, or
        `shared` (length, per-layer keys and values) of a token prefix every group's context continues."""
        import torch
        from transformers import DynamicCache

        lead = 0 if virtual is None else int(virtual.shape[0])
        if lead:  # placeholders for the virtual tokens: their embeddings are written over below
            groups = [_Group(g.index, [0] * lead + g.context, g.continuations) for g in groups]
        order = sorted(groups, key=lambda g: -g.size)
        rows: list[list[_Group]] = []
        sizes: list[int] = []
        for group in order:  # first-fit-decreasing packing into rows of at most pack_tokens
            for r, used in enumerate(sizes):
                if used + group.size <= self.pack_tokens:
                    rows[r].append(group)
                    sizes[r] += group.size
                    break
            else:
                rows.append([group])
                sizes.append(group.size)
        causal = causal_lm(self.model)
        decoder, head = causal.get_decoder(), causal.get_output_embeddings()
        embed = causal.get_input_embeddings()
        with torch.inference_mode():
            for row in rows:
                ids, positions, mask, targets = _tree_row(row, self._device)
                # use_cache=False: scoring never decodes further, so building a KV cache is wasted work
                if prefix or shared:  # a fresh prefix cache per row (the decoder appends the row's keys to it)
                    if shared:  # a new cache object around the same tensors: the append concatenates, copies
                        lead_len, cache = shared[0], DynamicCache(ddp_cache_data=shared[1])
                    else:
                        lead_len = prefix
                        cache = self.model.get_prompt(batch_size=1, max_cache_len=prefix + ids.shape[1])
                    mask = torch.cat([mask.new_zeros(*mask.shape[:-1], lead_len), mask], dim=-1)
                    out = decoder(input_ids=ids, attention_mask=mask, position_ids=positions + lead_len,
                                  use_cache=False, **{_cache_argument(decoder): cache})
                elif lead:
                    embeds = embed(ids)
                    start = 0
                    for g in row:  # each group starts with its own copy of the virtual tokens, at positions 0..v-1
                        embeds[0, start:start + lead] = virtual.to(embeds.dtype)
                        start += g.size
                    out = decoder(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False)
                else:
                    out = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
                hidden = out.last_hidden_state[0]
                for g, logliks, greedy, used in _read_scores(row, hidden, head, targets, ids.shape[1]):
                    yield g, logliks, greedy, used - lead

    def _score_padded_all(self, requests: list[Request]) -> list[Response]:
        """Loglikelihood through plain padded batches (the path prompt-learning adapters take)."""
        groups = [_Group(i, *self._pair_group(r)) for i, r in enumerate(requests)]
        out = sorted(self._score_padded(groups), key=lambda item: item[0].index)
        return [Response(logliks=ll, is_greedy=g, n_tokens=[len(c) for c in grp.continuations], tokens_processed=n)
                for grp, ll, g, n in out]

    def _pair_group(self, req: Request) -> tuple[list[int], list[list[int]]]:
        pairs = [self._encode_pair(req.context, cont) for cont in req.continuations]
        # The context encoding never depends on the continuation, so there is one group per request.
        return pairs[0][0], [c for _, c in pairs]

    def _score_padded(self, groups: list[_Group]):
        """Plain right-padded batches: for adapters (prompt tuning) that prepend virtual tokens."""
        import torch
        import torch.nn.functional as F

        flat = [(g, j) for g in groups for j in range(len(g.continuations))]
        flat.sort(key=lambda item: -(len(item[0].context) + len(item[0].continuations[item[1]])))
        partial: dict[int, dict[int, tuple[float, bool]]] = {}
        pad = self.tokenizer.pad_token_id
        keeps_logits = "logits_to_keep" in inspect.signature(causal_lm(self.model).forward).parameters
        with torch.inference_mode():
            for start in range(0, len(flat), self.batch_size):
                batch = flat[start:start + self.batch_size]
                seqs = [(g.context + g.continuations[j])[:-1] for g, j in batch]
                width = max(len(s) for s in seqs)
                ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self._device)
                mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self._device)
                # Only the last `keep` positions are scored: the output projection runs nowhere else. No KV cache.
                keep = width - min(len(s) - len(g.continuations[j]) for s, (g, j) in zip(seqs, batch))
                extra = {"logits_to_keep": keep} if keeps_logits else {}
                logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False, **extra).logits[:, -keep:]
                logprobs = F.log_softmax(logits.float(), dim=-1)
                for b, (g, j) in enumerate(batch):
                    cont = g.continuations[j]
                    n = len(seqs[b]) - (width - keep)
                    lp = logprobs[b, n - len(cont):n]
                    target = torch.tensor(cont, device=lp.device)
                    ll = float(lp.gather(-1, target[:, None]).sum())
                    greedy = bool((lp.argmax(-1) == target).all())
                    partial.setdefault(g.index, {})[j] = (ll, greedy)
                    if len(partial[g.index]) == len(g.continuations):
                        done = partial.pop(g.index)
                        yield (g, [done[k][0] for k in range(len(done))], [done[k][1] for k in range(len(done))],
                               g.size)

    # ---- rolling loglikelihood -------------------------------------------------------------------------
    def loglikelihood_rolling(self, requests: list[Request]) -> list[Response]:
        """Loglikelihood of whole texts in disjoint windows of the model's context length."""
        limit = self.max_length
        groups: list[Any] = []
        owners: list[Any] = []
        for i, req in enumerate(requests):
            tokens = self._encode(req.context)
            stream = [self._prefix_token()] + tokens
            for start in range(0, max(len(tokens), 1), limit):
                window = stream[start:start + limit + 1]
                if len(window) < 2:
                    continue
                groups.append(_Group(len(groups), window[:1], [window[1:]]))
                owners.append(i)
        totals = [0.0] * len(requests)
        used = [0] * len(requests)
        for group, logliks, _, run in self._score_groups(groups):
            totals[owners[group.index]] += logliks[0]
            used[owners[group.index]] += run
        return [Response(logliks=[totals[i]], n_tokens=[len(self._encode(r.context))], tokens_processed=used[i])
                for i, r in enumerate(requests)]

    # ---- generation -----------------------------------------------------------------------------------
    def generate(self, requests: list[Request]) -> list[Response]:
        """Batched generation (left padding, sorted by length); greedy unless the settings sample.

        Every completion is a function of its own prompt and settings, never of its batch: a sampled one draws
        from its own seeded generator (`_RowSampler`), and a prompt-learning adapter's rows get the positions
        they would have alone (`_generate_batch`). So a rerun, a resumed run or another batch size gives the
        same text, and the n samples of a pass@k item run as one batch."""
        results: list[Response | None] = [None] * len(requests)
        by_settings: dict[tuple[GenSettings, int], list[int]] = {}
        # the virtual tokens and the prefix length, computed once for every batch (`_generate_batch`); prompt
        # learning of any other PEFT type keeps PEFT's generate, which drops position_ids: a left-padded row's
        # prompt would sit further from its virtual tokens than alone, so only equal lengths share a batch
        placed = _virtual_prompt(self.model), _prefix_length(self.model)
        exact_length = is_prompt_learning(self.model) and placed[0] is None and not placed[1]
        lengths = [len(self._encode(r.context)) for r in requests]
        for i, req in enumerate(requests):
            settings = replace(req.gen or GenSettings(), seed=0)  # the seed goes to the row, not the batch
            # Sampled rows batch with equal prompt lengths only (a pass@k item's n samples): measured on 2 cores,
            # HumanEval's prompts (60 to 600 tokens) padded together cost more prefill than the shared decoding
            # steps save, as the completions mostly stop within a few tokens (17 items: 40 s, against 34 s drawn
            # alone and 30 s by equal lengths). Greedy rows keep length-sorted batches of batch_size.
            same = exact_length or not settings.greedy
            by_settings.setdefault((settings, lengths[i] if same else 0), []).append(i)
        self.tokenizer.padding_side = "left"
        for (settings, _), indices in by_settings.items():
            indices.sort(key=lambda i: -lengths[i])
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start:start + self.batch_size]
                seeds = [item_seed((requests[i].gen or GenSettings()).seed, requests[i].context) for i in batch]
                prompts = [requests[i].context for i in batch]
                for i, text, n in self._generate_batch(prompts, settings, seeds, placed):
                    results[batch[i]] = Response(text=text, n_tokens=[n], tokens_processed=n)
        return [r for r in results if r is not None]

    def _generate_batch(self, prompts: list[str], settings: GenSettings, seeds: list[int],
                        placed: tuple[Any, int]):
        import torch

        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self._device)
        kwargs: dict[str, Any] = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=tok.pad_token_id,
                                      do_sample=False, temperature=None, top_p=None, top_k=None)
        if not settings.greedy:  # greedy decoding over Gumbel-perturbed scores: a draw per row (_RowSampler)
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([_RowSampler(settings, seeds)])
        if settings.stop:
            kwargs.update(stop_strings=list(settings.stop), tokenizer=tok)
        # Prompt and prefix tuning generate through the base, with their virtual tokens placed as in scoring:
        # PEFT 0.21's own generate under transformers 5 gives positions its forward (training, scoring) does not
        # (tests/unit/test_prompt_learning_scoring.py)
        virtual, prefix = placed
        with torch.inference_mode():
            if virtual is not None:  # from [pads, virtual tokens, prompt]: only new tokens come back
                new = causal_lm(self.model).generate(**_virtual_inputs(self.model, enc, virtual), **kwargs)
            elif prefix:
                out = causal_lm(self.model).generate(**_prefix_inputs(self.model, enc, prefix), **kwargs)
                new = out[:, prefix + enc.input_ids.shape[1]:]
            else:
                new = self.model.generate(**enc, **kwargs)[:, enc.input_ids.shape[1]:]
        for i, row in enumerate(new):
            ids = [t for t in row.tolist() if t != tok.pad_token_id]
            text = tok.decode(ids, skip_special_tokens=True)
            yield i, truncate_at_stop(text, settings.stop), len(ids)


def _virtual_inputs(model: Any, enc: Any, virtual: Any) -> dict[str, Any]:
    """Prompt tuning's generation inputs with the virtual tokens after a row's left padding, not before it (as
    PEFT's generate puts them): the positions count from the first unmasked token, so every row, padded or not,
    sees its virtual tokens and prompt where it would alone."""
    import torch

    embeds = causal_lm(model).get_input_embeddings()(enc.input_ids)
    virtual = virtual.to(embeds.dtype)
    pads = (enc.attention_mask == 0).sum(dim=1).tolist()
    rows, masks = [], []
    for b, p in enumerate(pads):  # left padding: row b's first p positions are pads
        rows.append(torch.cat([embeds[b, :p], virtual, embeds[b, p:]]))
        mask = enc.attention_mask[b]
        masks.append(torch.cat([mask[:p], mask.new_ones(virtual.shape[0]), mask[p:]]))
    return {"inputs_embeds": torch.stack(rows), "attention_mask": torch.stack(masks)}


def _prefix_inputs(model: Any, enc: Any, prefix: int) -> dict[str, Any]:
    """Prefix tuning's generation inputs: the prefix's keys and values as a filled cache, which transformers takes
    to hold the first `prefix` input ids (placeholders here), and the mask with the prefix first. Positions count
    unmasked tokens, so a padded row's prompt starts at `prefix`, as in PEFT's forward and in scoring."""
    import torch

    rows = enc.input_ids.shape[0]
    ids = torch.cat([enc.input_ids.new_zeros(rows, prefix), enc.input_ids], dim=1)
    mask = torch.cat([enc.attention_mask.new_ones(rows, prefix), enc.attention_mask], dim=1)
    return {"input_ids": ids, "attention_mask": mask, "past_key_values": model.get_prompt(batch_size=rows)}


class _RowSampler:
    """Sampling as greedy decoding: each row's scores (temperature and top-p applied by transformers' own
    warpers) plus Gumbel noise from that row's generator, seeded by its prompt and seed. The Gumbel-max trick
    (argmax of log-probabilities plus independent Gumbel(0, 1) noise is an exact draw from the softmax; Gumbel
    1954, as used in Maddison et al., "A* Sampling", NeurIPS 2014) makes every row's draw independent of the
    others in its batch. transformers' sampler draws the whole batch from one global generator, so a sampled
    completion would depend on its batch, and used to be drawn alone."""

    def __init__(self, settings: GenSettings, seeds: list[int]) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopPLogitsWarper

        self.warpers: list[Any] = [TemperatureLogitsWarper(settings.temperature)]
        if settings.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(settings.top_p))
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for warp in self.warpers:
            scores = warp(input_ids, scores)
        # one uniform draw per row and step, on the CPU (seeded generators there give the same numbers anywhere)
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64)
                               for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float64).tiny)))
        return scores + gumbel.to(device=scores.device, dtype=scores.dtype)


def item_seed(seed: int, prompt: str) -> int:
    """The sampling seed of one prompt: the settings' seed (part of the cache key) mixed with the prompt."""
    return int(hashlib.sha256(f"{seed}\0{prompt}".encode()).hexdigest()[:8], 16)


def truncate_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """Cut generated text at the first stop sequence."""
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return text[:cut] if cut >= 0 else text


# Prompt learning whose PEFT forward (without labels) prepends virtual-token embeddings from `get_prompt` to the
# input embeddings, nothing else: scored and generated as prompt tuning is (`_virtual_prompt`).
VIRTUAL_PROMPT_TYPES = ("PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING", "CPT")


def _peft_kind(model: Any) -> str:
    """The active adapter's PEFT type ("PROMPT_TUNING", ...), "" for a bare model."""
    config = getattr(model, "active_peft_config", None)
    return str(getattr(getattr(config, "peft_type", None), "value", getattr(config, "peft_type", "")))


def _virtual_prompt(model: Any) -> Any:
    """The virtual-token embeddings ([v, hidden]) that `model`'s PEFT forward prepends to every input, when it is
    a prompt-learning PeftModel of VIRTUAL_PROMPT_TYPES, else None: prompt tuning, P-tuning (its prompt encoder
    run once), multitask prompt tuning (task 0's prompt; `adapters.inspect_adapter` refuses one with several) and
    context-aware prompt tuning (CPT; its type masks and loss only act in training, with labels).

    PEFT's own forward prepends them to one sequence per batch row, which rules out packing; placed at the head
    of every packed group instead (positions 0..v-1, seen by that group only) they score exactly the same. PEFT's
    own generate drifts from that forward under transformers 5 (tests/unit/test_prompt_learning_scoring.py), so
    generation places them too (`_virtual_inputs`). Prefix tuning (a KV-cache prefix) keeps its own path."""
    kind = _peft_kind(model)
    if kind not in VIRTUAL_PROMPT_TYPES:
        return None
    import torch

    with torch.inference_mode():
        if kind == "MULTITASK_PROMPT_TUNING":
            device = next(model.parameters()).device
            return model.get_prompt(batch_size=1, task_ids=torch.zeros(1, dtype=torch.long, device=device))[0]
        return model.get_prompt(batch_size=1)[0]


def _prefix_length(model: Any) -> int:
    """The number of virtual tokens of a prefix-tuning PeftModel (0 for anything else).

    PEFT passes the prefix as a KV cache with one copy per batch row, so its forward cannot pack; a packed row
    whose 4D mask lets every token see the prefix (positions shifted by its length) scores the same."""
    if _peft_kind(model) != "PREFIX_TUNING":
        return 0
    return int(getattr(model.active_peft_config, "num_virtual_tokens", 0) or 0)


def _cache_argument(decoder: Any) -> str:
    """The decoder's keyword for a KV cache: `cache` from transformers 5.x's rename, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def _shared_prefixes(groups: list[_Group], minimum: int) -> list[tuple[int, list[_Group]]]:
    """Clusters of groups with the length of the token prefix their contexts share (0: score them plainly).

    Sorted by token ids, contexts with a common prefix sit side by side, and the prefix a run of them shares
    is the least common length of neighbours. A run is split at that least link when its two sides save more
    prefix tokens on their own (one odd context must not shrink a long few-shot block to a short system
    prompt); a prefix under `minimum` tokens is not worth its own forward pass. Each context keeps its last
    token out of the prefix: that token's hidden state predicts the first continuation token."""
    order = sorted(groups, key=lambda g: g.context)
    owns = [g.context[:-1] for g in order]
    links = [common_prefix(a, b) for a, b in zip(owns, owns[1:])]

    def best(lo: int, hi: int) -> tuple[list[tuple[int, list[_Group]]], int]:
        """Clusters of order[lo:hi] and the prefix tokens they save."""
        if hi - lo < 2:
            return [(0, order[lo:hi])], 0
        cut = min(links[lo:hi - 1])
        whole = (hi - lo - 1) * cut if cut >= minimum else 0
        if whole and hi - lo > _MAX_SPLIT:  # bounded recursion: a long run shares its common prefix
            return [(cut, order[lo:hi])], whole
        at = links.index(cut, lo, hi - 1) + 1
        (left, saved_left), (right, saved_right) = best(lo, at), best(at, hi)
        if whole and whole >= saved_left + saved_right:
            return [(cut, order[lo:hi])], whole
        return left + right, saved_left + saved_right

    clusters: list[tuple[int, list[_Group]]] = []
    start = 0
    for i in range(len(order)):  # runs between links too short to share are independent
        if i == len(order) - 1 or links[i] < minimum:
            clusters += best(start, i + 1)[0]
            start = i + 1
    return clusters


_PREFIX_MEMO = 4  # shared prefixes kept between calls (a 400-token prefix of a 7B model in bf16: about 50 MB)
_MAX_SPLIT = 256  # groups in a run beyond which it is not split further (recursion depth)


def _tree_row(row: list[_Group], device: Any):
    """Token ids, positions, 4D mask and score targets for one packed row of groups.

    Each group is its context followed by every continuation as a branch: a continuation token sees the
    context and the earlier tokens of its own branch only, and positions restart after the context.
    """
    import torch

    ids: list[Any] = []
    positions: list[Any] = []
    owner: list[Any] = []
    targets: list[Any] = []
    for g in row:
        base = len(ids)
        ids += g.context
        positions += list(range(len(g.context)))
        owner += [(base, -1)] * len(g.context)
        branch_targets = []
        for cont in g.continuations:
            start = len(ids)
            ids += cont
            positions += list(range(len(g.context), len(g.context) + len(cont)))
            owner += [(base, start)] * len(cont)
            # token k of the branch is predicted from the token before it (the context's last for k=0)
            prev = [base + len(g.context) - 1] + list(range(start, start + len(cont) - 1))
            branch_targets.append((prev, cont))
        targets.append(branch_targets)
    n = len(ids)
    group_start = torch.tensor([o[0] for o in owner])
    branch_start = torch.tensor([o[1] for o in owner])
    idx = torch.arange(n)
    ctx_end = torch.tensor([_ctx_end(row, o[0]) for o in owner])
    q, k = idx[:, None], idx[None, :]
    same_group = group_start[:, None] == group_start[None, :]
    key_is_context = k < ctx_end[None, :]
    key_in_my_branch = (branch_start[None, :] == branch_start[:, None]) & (branch_start[None, :] >= 0)
    allowed = same_group & (k <= q) & (key_is_context | key_in_my_branch)
    mask = torch.zeros(n, n)
    mask.masked_fill_(~allowed, torch.finfo(torch.float32).min)
    return (torch.tensor([ids], device=device), torch.tensor([positions], device=device),
            mask[None, None].to(device), targets)


def _ctx_end(row: list[_Group], base: int) -> int:
    start = 0
    for g in row:
        if start == base:
            return base + len(g.context)
        start += g.size
    raise AssertionError("group start not found")


def _read_scores(row: list[_Group], hidden: Any, head: Any, targets: list, row_len: int):
    """Score every branch of a packed row with one output-projection call over just the needed positions."""
    import torch
    import torch.nn.functional as F

    positions = [p for branches in targets for prev, _ in branches for p in prev]
    tokens = torch.tensor([t for branches in targets for _, cont in branches for t in cont])
    logprobs = F.log_softmax(head(hidden[positions]).float(), dim=-1)
    picked = logprobs.gather(-1, tokens[:, None].to(logprobs.device))[:, 0]
    greedy_hits = logprobs.argmax(-1).cpu() == tokens
    offset = 0
    for g, branches in zip(row, targets):
        logliks, greedy = [], []
        for _, cont in branches:
            span = slice(offset, offset + len(cont))
            logliks.append(float(picked[span].sum()))
            greedy.append(bool(greedy_hits[span].all()))
            offset += len(cont)
        yield g, logliks, greedy, g.size


def _load(loader: Any, source: ModelSource, **kwargs: Any) -> Any:
    """Call a transformers loader and turn its failures into one clear line."""
    try:
        return loader(source.path, **kwargs)
    except OSError as exc:
        if source.hub:
            raise UserError(f"cannot load {source.spec} from the Hugging Face hub (offline or unknown id): "
                            f"{str(exc).splitlines()[0]}", field="-m/--model") from None
        raise UserError(f"cannot load model {source.spec}: {str(exc).splitlines()[0]}", field="-m/--model") from None
    except ValueError as exc:
        raise UserError(f"cannot load model {source.spec}: {str(exc).splitlines()[0]}", field="-m/--model") from None
