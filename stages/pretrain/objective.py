"""The pretraining objective beyond cross-entropy: OLMo 2's LM-head z-loss and OLMoE's router
z-loss, added to the loss the HF Trainer optimizes; and per-layer router statistics.

* LM-head z-loss (``pretrain.z_loss_coef``; OLMo 2 uses 1e-5): coef x the mean, over the
  positions that predict a label, of ``logsumexp(logits)^2``.
* Router z-loss (``pretrain.router_z_loss_coef``; OLMoE: 0.001): coef x the mean over MoE
  layers of the mean over tokens of ``logsumexp(router_logits)^2``.
* The load-balancing loss is transformers' own (``OlmoeForCausalLM`` adds
  ``router_aux_loss_coef`` x ``load_balancing_loss_func`` when ``output_router_logits``;
  ``pretrain.router_aux_loss_coef``, OLMoE: 0.01).

``RouterWindow`` sums, over the optimizer steps between two log steps, each layer's top-k token
counts per expert, load-balance value, router z-loss and router entropy; ``PretrainTrainer``
adds them to the log entry (``router/...`` keys; ``stages.pretrain.routerstats`` writes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# OLMoE (Muennighoff et al. 2024, sec. 2 / tab. 1): load-balancing weight 0.01, router z 0.001.
OLMOE_ROUTER_AUX_LOSS_COEF = 0.01
OLMOE_ROUTER_Z_LOSS_COEF = 0.001


@dataclass(frozen=True)
class Objective:
    """Coefficients of the extra loss terms (0 leaves a term out)."""

    z_loss_coef: float = 0.0
    router_z_loss_coef: float = 0.0


def objective(config: dict[str, Any]) -> Objective:
    """The recipe's coefficients; the router z-loss defaults to OLMoE's for architecture olmoe."""
    moe = config.get("architecture") == "olmoe"
    router_z = config.get("router_z_loss_coef", OLMOE_ROUTER_Z_LOSS_COEF if moe else 0.0)
    return Objective(float(config.get("z_loss_coef", 0.0)), float(router_z))


def _mask(attention_mask: Any) -> Any:
    """Flat float weights of the router rows (batch x sequence), None without a mask."""
    return None if attention_mask is None else attention_mask.reshape(-1).float()


def _masked_mean(values: Any, weights: Any) -> Any:
    if weights is None:
        return values.mean()
    return (values * weights.to(values.device)).sum() / weights.sum().clamp(min=1)


def lm_z_loss(logits: Any, labels: Any) -> Any:
    """Mean of ``logsumexp(logits)^2`` over the positions whose next token is a label."""
    shifted = labels[..., 1:]
    lse = logits[..., :-1, :].float().logsumexp(dim=-1)
    valid = (shifted != -100).float()
    return (lse.pow(2) * valid).sum() / valid.sum().clamp(min=1)


def router_z_loss(router_logits: tuple[Any, ...], attention_mask: Any = None) -> Any:
    """Mean over layers of the mean over (unpadded) tokens of ``logsumexp(router_logits)^2``."""
    import torch

    per_layer = []
    for layer in router_logits:
        lse = layer.float().logsumexp(dim=-1)
        per_layer.append(_masked_mean(lse.pow(2), _mask(attention_mask)))
    return torch.stack(per_layer).mean()


def layer_stats(logits: Any, top_k: int, weights: Any = None) -> dict[str, Any]:
    """One layer's router statistics: top-k token counts per expert, load balance (the HF
    formula on this layer alone: E x sum_e f_e P_e), router z-loss and entropy (nats)."""
    import torch

    logits = logits.detach().float()
    experts = logits.shape[-1]
    probs = logits.softmax(dim=-1)
    chosen = probs.topk(top_k, dim=-1).indices
    w = torch.ones(logits.shape[0]) if weights is None else weights.to(logits.device)
    counts = torch.zeros(experts).scatter_add_(0, chosen.reshape(-1), w.repeat_interleave(top_k))
    rows = w.sum().clamp(min=1)
    mean_prob = (probs * w.unsqueeze(-1)).sum(0) / rows
    entropy = -(probs * probs.clamp(min=1e-30).log()).sum(-1)
    return {
        "tokens": counts,
        "load_balance": experts * (counts / rows * mean_prob).sum(),
        "z_loss": (logits.logsumexp(-1).pow(2) * w).sum() / rows,
        "entropy": (entropy * w).sum() / rows,
    }


class RouterWindow:
    """Router statistics summed over the steps since the last log entry."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start a new window."""
        self.steps = 0
        self.layers: list[dict[str, Any]] = []
        self.totals = {"load_balance": 0.0, "z_loss": 0.0}

    def add(self, outputs: Any, attention_mask: Any, top_k: int, z_loss: float) -> None:
        """Add one training step's router logits (``outputs.router_logits``)."""
        router = outputs.router_logits
        stats = [layer_stats(x, top_k, _mask(attention_mask)) for x in router]
        if not self.layers:
            self.layers = [{key: 0.0 for key in stats[0]} for _ in stats]
        for total, layer in zip(self.layers, stats, strict=True):
            for key, value in layer.items():
                total[key] = total[key] + value
        aux = outputs.aux_loss
        self.totals["load_balance"] += float(aux.detach()) if aux is not None else 0.0
        self.totals["z_loss"] += z_loss
        self.steps += 1

    def log_entry(self) -> dict[str, Any]:
        """``router/...`` keys of the log entry (means over the window's steps; token counts
        summed over them and over processes); empties the window."""
        from stages.common.distributed import all_reduce_sum

        if not self.steps:
            return {}
        entry: dict[str, Any] = {
            f"router/{key}": value / self.steps for key, value in sorted(self.totals.items())
        }
        for index, layer in enumerate(self.layers):
            tokens = all_reduce_sum(layer["tokens"])
            entry[f"router/layer{index}/tokens"] = [round(float(t)) for t in tokens]
            for key in ("load_balance", "z_loss", "entropy"):
                entry[f"router/layer{index}/{key}"] = float(layer[key]) / self.steps
        self.reset()
        return entry

    def state(self) -> dict[str, Any]:
        """What a checkpoint saves (``stages.common.checkpoints``)."""
        layers = [
            {k: (v.tolist() if hasattr(v, "tolist") else float(v)) for k, v in layer.items()}
            for layer in self.layers
        ]
        return {"steps": self.steps, "layers": layers, "totals": dict(self.totals)}

    def restore(self, record: dict[str, Any]) -> None:
        import torch

        self.steps = record["steps"]
        self.totals = dict(record["totals"])
        self.layers = [
            {k: torch.tensor(v) if isinstance(v, list) else v for k, v in layer.items()}
            for layer in record["layers"]
        ]


def pretrain_trainer_class() -> type:
    """``transformers.Trainer`` with the extra loss terms and the router log (imported late)."""
    from transformers import Trainer

    class PretrainTrainer(Trainer):
        objective = Objective()
        router_window: RouterWindow | None = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            coefs = self.objective
            if coefs.z_loss_coef:
                loss = loss + coefs.z_loss_coef * lm_z_loss(outputs.logits, inputs["labels"])
            router = getattr(outputs, "router_logits", None)
            z = None
            if router and coefs.router_z_loss_coef:
                z = router_z_loss(router, inputs.get("attention_mask"))
                loss = loss + coefs.router_z_loss_coef * z
            if router and self.router_window is not None and model.training:
                if z is None:
                    z = router_z_loss(router, inputs.get("attention_mask"))
                top_k = self.accelerator.unwrap_model(model).config.num_experts_per_tok
                self.router_window.add(
                    outputs, inputs.get("attention_mask"), top_k, float(z.detach())
                )
            return (loss, outputs) if return_outputs else loss

        def log(self, logs, *args, **kwargs):
            if self.router_window is not None and "loss" in logs:
                logs = {**logs, **self.router_window.log_entry()}
            super().log(logs, *args, **kwargs)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            """Resume an OLMoE's weights through ``from_pretrained``: save_pretrained writes its
            experts one by one (the hub layout) and the Trainer's plain ``load_state_dict``
            would leave the fused expert weights as initialized (transformers 5.17)."""
            target = model if model is not None else self.model
            if target.config.model_type != "olmoe" or self.is_deepspeed_enabled:
                super()._load_from_checkpoint(resume_from_checkpoint, model)
                return
            saved = type(target).from_pretrained(
                resume_from_checkpoint, local_files_only=True, use_safetensors=True
            )
            target.load_state_dict(saved.state_dict(), strict=True)

        def accumulator_state(self) -> dict[str, Any]:
            return self.router_window.state() if self.router_window is not None else {}

        def restore_accumulator_state(self, record: dict[str, Any]) -> None:
            if self.router_window is not None and record:
                self.router_window.restore(record)

    return PretrainTrainer
