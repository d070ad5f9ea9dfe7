"""Policy optimisation against a trained reward model: GRPO or RLOO (TRL), LoRA on the policy.

The reward model is the output directory of a `reward_model` recipe: a LoRA adapter plus score head on
the same base, merged here into a plain sequence-classification model for `reward_funcs=`. GRPO and RLOO
take the same arguments, so one builder serves both. torch, transformers, peft and trl are imported inside
the functions: start-up time.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import Field, FiniteFloat, model_validator

from harness.train.common import Context, adapted_model, load_causal_lm, trainer_args
from harness.train.data import as_dataset
from harness.train.methods import MethodSpec, register_method
from harness.train.preference import NOT_BOTTLENECK, PreferenceOptions
from harness.train.provenance import read_provenance
from harness.train.recipe import LoadedRecipe


class PolicyOptions(PreferenceOptions):
    """GRPO's and RLOO's `train:` options: beta, and how completions are sampled for the reward model."""

    num_generations: int = Field(default=2, ge=2, le=1024)  # completions per prompt
    max_completion_length: int = Field(default=32, ge=1, le=1_048_576)
    temperature: FiniteFloat = Field(default=1.0, gt=0)  # sampling temperature

    @model_validator(mode="after")
    def _groups_fit(self) -> PolicyOptions:
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(f"batch_size x grad_accum ({self.batch_size * self.grad_accum}) must be divisible by "
                             f"num_generations ({self.num_generations})")
        return self


def check_reward_model(recipe: LoadedRecipe, base: dict[str, Any]) -> None:
    """The recipe's reward_model is the output of a reward_model recipe on the same base (nothing loaded)."""
    path = recipe.resolve(recipe.reward_model or "")
    if not (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        raise recipe.error(f"{path} holds no trained reward model (run its recipe first)", "reward_model")
    prov = read_provenance(path)
    if prov is None or prov.get("method") != "reward_model":
        raise recipe.error(f"{path} is not the output of a reward_model recipe", "reward_model")
    recorded = (prov.get("base") or {}).get("model_hash")
    if recorded and recorded != base["model_hash"]:
        raise recipe.error(f"reward model {path} was trained on base {prov['base'].get('model', '?')} (hash "
                           f"{str(recorded)[:12]}), but this recipe's base is {base['model']} "
                           f"(hash {str(base['model_hash'])[:12]})", "reward_model")


def load_reward_model(ctx: Context) -> Any:
    """The trained reward model, merged, frozen and in eval mode."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    path = ctx.recipe.resolve(ctx.recipe.reward_model or "")
    if (path / "config.json").is_file():  # a fully fine-tuned reward model
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    else:
        base = AutoModelForSequenceClassification.from_pretrained(ctx.source.path, num_labels=1,
                                                                  dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(path)).merge_and_unload()  # not in place: keep the result
    model.config.pad_token_id = ctx.tokenizer.pad_token_id
    return model.eval().requires_grad_(False)


def build_policy_trainer(ctx: Context, config_class: str, trainer_class: str) -> Any:
    """`GRPOTrainer` or `RLOOTrainer` (with their configs) and the reward model as the only reward function."""
    import trl
    from transformers import AutoTokenizer

    hp = ctx.hp
    # Generation needs left padding; the reward model reads the last token, so it pads on the right.
    ctx.tokenizer.padding_side = "left"
    reward_tok = AutoTokenizer.from_pretrained(ctx.source.path)
    if reward_tok.pad_token_id is None:
        reward_tok.pad_token = reward_tok.eos_token
    reward_tok.padding_side = "right"
    # No held-out loss here: the reward model's score in the logs is the signal.
    args = getattr(trl, config_class)(**{**trainer_args(ctx), "eval_strategy": "no", "eval_steps": None},
                                      num_generations=hp.num_generations, beta=hp.beta,
                                      max_completion_length=hp.max_completion_length, temperature=hp.temperature)
    model, config = adapted_model(ctx, load_causal_lm(ctx.source))
    return getattr(trl, trainer_class)(model=model, reward_funcs=load_reward_model(ctx), args=args,
                                       train_dataset=as_dataset(ctx.data.train), processing_class=ctx.tokenizer,
                                       reward_processing_classes=reward_tok, peft_config=config,
                                       callbacks=ctx.callbacks)


POLICY = dict(data="prompt", options=PolicyOptions, peft_types=NOT_BOTTLENECK, needs_reward_model=True,
              check=check_reward_model)
register_method(MethodSpec("grpo", partial(build_policy_trainer, config_class="GRPOConfig", trainer_class="GRPOTrainer"),
                           description="GRPO against a trained reward model", **POLICY))  # type: ignore[arg-type]
register_method(MethodSpec("rloo", partial(build_policy_trainer, config_class="RLOOConfig", trainer_class="RLOOTrainer"),
                           description="RLOO against a trained reward model", **POLICY))  # type: ignore[arg-type]
