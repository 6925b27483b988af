"""Several trained embedding models of one graph scored as one: each member's scores become
log-probabilities over the candidates (a softmax), and the ensemble ranks by their mean. Models
trained from different seeds make different mistakes; the mean ranks better than any one of them
(README, "Ensembles")."""

from __future__ import annotations

from typing import Any, Sequence

from kgbuild.errors import KgbuildError


class EnsembleModel:
    """Trained PyKEEN models of the same entities and relations, scored together.

    Quacks like the parts of a PyKEEN Model that ranking and `kgbuild predict` use (`predict`,
    `predict_h`, `predict_t`, `num_entities`, `device`, `eval`, `to`), so PyKEEN's
    RankBasedEvaluator ranks it as it ranks one model. Each member's scores are
    log-softmaxed over the candidates before they are averaged: a member's scale and offset
    (a cross-entropy model's logits, a distance model's negated distances) then weigh nothing, only
    how it orders and spreads its candidates. The mean of log-probabilities is a product of experts:
    a candidate ranks high only if no member finds it unlikely."""

    def __init__(self, members: Sequence[Any]):
        members = list(members)
        if not members:
            raise KgbuildError("an ensemble needs at least one model", hint="train members with --members N")
        first = members[0]
        for other in members[1:]:
            if (other.num_entities, other.num_relations) != (first.num_entities, first.num_relations):
                raise KgbuildError(
                    f"ensemble members differ: {first.num_entities} entities / {first.num_relations} relations "
                    f"against {other.num_entities} / {other.num_relations}",
                    hint="train every member on the same training triples")
        self.members = members

    @property
    def num_entities(self) -> int:
        return self.members[0].num_entities

    @property
    def num_relations(self) -> int:
        return self.members[0].num_relations

    @property
    def device(self):
        return self.members[0].device

    def eval(self) -> "EnsembleModel":
        for member in self.members:
            member.eval()
        return self

    def to(self, device) -> "EnsembleModel":
        for member in self.members:
            member.to(device)
        return self

    def parameters(self):
        for member in self.members:
            yield from member.parameters()

    def predict(self, hrt_batch, target, **kwargs):
        """The mean of the members' log-softmaxed `predict` scores (PyKEEN's signature)."""
        return self._mean(lambda m: m.predict(hrt_batch=hrt_batch, target=target, **kwargs))

    def predict_t(self, hr_batch, **kwargs):
        return self._mean(lambda m: m.predict_t(hr_batch, **kwargs))

    def predict_h(self, rt_batch, **kwargs):
        return self._mean(lambda m: m.predict_h(rt_batch, **kwargs))

    def _mean(self, score):
        import torch

        total = None
        for member in self.members:
            logp = torch.log_softmax(score(member).float(), dim=-1)
            total = logp if total is None else total.add_(logp)
        return total.div_(len(self.members))
