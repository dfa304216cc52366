"""LangSmith eval suite: the same backends, the same examples, LangSmith's ``evaluate``.

With ``LANGSMITH_API_KEY`` set, ``run_suite`` creates or updates a LangSmith dataset
(``banking77-validation``, ``banking77-test`` or the name given for a user CSV) and runs one
``langsmith.evaluate`` experiment per backend against it, so the experiments sit side by side in
LangSmith. Without a key, the same target and evaluators run through ``langsmith.evaluate`` on
in-memory ``langsmith.schemas.Example`` objects with ``upload_results=False`` (offline; plain
dicts are not accepted as data) and a client that never contacts the API.

Evaluators:
- ``exact_match`` (per example): 1.0 when the predicted intent equals the gold intent;
- ``accuracy`` and ``macro_f1`` (summary evaluators over the whole experiment, scikit-learn).
"""

from __future__ import annotations

import os
import uuid
import warnings
from typing import Any, Callable, Mapping, Sequence

INPUT_KEY = "text"
OUTPUT_KEY = "intent"


def has_api_key() -> bool:
    """True when ``LANGSMITH_API_KEY`` (or the older ``LANGCHAIN_API_KEY``) is set."""
    return bool(os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY"))


def make_examples(texts: Sequence[str], labels: Sequence[str], dataset_name: str = "in-memory") -> list:
    """In-memory ``langsmith.schemas.Example`` objects ({"text"} -> {"intent"}), ids derived
    deterministically from (dataset_name, index, text)."""
    from langsmith.schemas import Example

    ds_id = uuid.uuid5(uuid.NAMESPACE_URL, f"banking-assistant/{dataset_name}")
    return [
        Example(id=uuid.uuid5(ds_id, f"{i}\x1f{t}"), dataset_id=ds_id,
                inputs={INPUT_KEY: t}, outputs={OUTPUT_KEY: y})
        for i, (t, y) in enumerate(zip(texts, labels))
    ]


def exact_match(run: Any, example: Any) -> dict:
    """Row evaluator: ``{"key": "exact_match", "score": 1.0 | 0.0}``."""
    pred = (run.outputs or {}).get(OUTPUT_KEY)
    return {"key": "exact_match", "score": float(pred == (example.outputs or {}).get(OUTPUT_KEY))}


def _pairs(runs: Sequence[Any], examples: Sequence[Any]) -> tuple[list[str], list[str]]:
    gold = [(e.outputs or {}).get(OUTPUT_KEY) for e in examples]
    pred = [str((r.outputs or {}).get(OUTPUT_KEY)) for r in runs]
    return gold, pred


def accuracy_summary(runs: Sequence[Any], examples: Sequence[Any]) -> dict:
    """Summary evaluator: exact-match accuracy (scikit-learn ``accuracy_score``)."""
    from sklearn.metrics import accuracy_score

    gold, pred = _pairs(runs, examples)
    return {"key": "accuracy", "score": float(accuracy_score(gold, pred))}


def macro_f1_summary(runs: Sequence[Any], examples: Sequence[Any]) -> dict:
    """Summary evaluator: macro-F1 over the gold intents (scikit-learn ``f1_score``)."""
    from sklearn.metrics import f1_score

    gold, pred = _pairs(runs, examples)
    return {"key": "macro_f1",
            "score": float(f1_score(gold, pred, labels=sorted(set(gold)), average="macro", zero_division=0))}


def make_target(model: Any, trace_model: bool = True) -> Callable[[dict], dict]:
    """The function LangSmith calls per example: ``{"text"} -> {"intent", "confidence"}``.

    ``trace_model=False`` keeps the model call out of LangSmith tracing (offline runs: the
    nested chat-model run would otherwise be sent to the API, and retried, per example)."""
    from langsmith import tracing_context

    def target(inputs: dict) -> dict:
        if trace_model:
            msg = model.invoke(inputs[INPUT_KEY])
        else:
            with tracing_context(enabled=False):
                msg = model.invoke(inputs[INPUT_KEY])
        meta = msg.response_metadata
        return {OUTPUT_KEY: msg.content, "confidence": meta.get("confidence"),
                "latency_ms": meta.get("latency_ms")}

    return target


def offline_client():
    """A LangSmith client that never calls the API (no key; server info given up front)."""
    from langsmith import Client
    from langsmith.schemas import LangSmithInfo

    return Client(api_key="offline", api_url="http://127.0.0.1:9", info=LangSmithInfo(),
                  auto_batch_tracing=False)


def sync_dataset(client: Any, name: str, texts: Sequence[str], labels: Sequence[str],
                 description: str = "") -> Any:
    """Create dataset ``name`` or add the (text, intent) rows it does not hold yet.

    Returns the ``langsmith.schemas.Dataset``. Network errors propagate (``LangSmithError``).
    """
    if client.has_dataset(dataset_name=name):
        ds = client.read_dataset(dataset_name=name)
        have = {((e.inputs or {}).get(INPUT_KEY), (e.outputs or {}).get(OUTPUT_KEY))
                for e in client.list_examples(dataset_id=ds.id)}
    else:
        ds = client.create_dataset(name, description=description or f"{name}: text -> BANKING77 intent")
        have = set()
    new = [{"inputs": {INPUT_KEY: t}, "outputs": {OUTPUT_KEY: y}}
           for t, y in zip(texts, labels) if (t, y) not in have]
    for i in range(0, len(new), 500):
        client.create_examples(dataset_id=ds.id, examples=new[i : i + 500])
    return ds


def run_suite(
    models: Mapping[str, Any],
    texts: Sequence[str],
    labels: Sequence[str],
    dataset_name: str,
    *,
    upload: bool | None = None,
    max_concurrency: int = 0,
    client: Any = None,
) -> dict[str, dict[str, Any]]:
    """Run one ``langsmith.evaluate`` experiment per backend on the same examples.

    ``upload``: None = upload when an API key is set. Uploading syncs ``dataset_name`` first
    (``sync_dataset``) and evaluates against it; offline uses in-memory Examples with
    ``upload_results=False``. Returns name -> {"accuracy", "macro_f1", "n", "experiment",
    "url", "uploaded"} (accuracy/macro_f1 from the summary evaluators, fractions 0-1; ``error``
    instead when the backend failed).
    """
    from langsmith import evaluate

    upload = has_api_key() if upload is None else upload
    if upload:
        from langsmith import Client

        client = client or Client()
        sync_dataset(client, dataset_name, texts, labels)
        data: Any = dataset_name
    else:
        client = client or offline_client()
        data = make_examples(texts, labels, dataset_name)
    out: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*upload_runs.*")  # offline mode is "beta"
                res = evaluate(
                    make_target(model, trace_model=upload),
                    data=data,
                    evaluators=[exact_match],
                    summary_evaluators=[accuracy_summary, macro_f1_summary],
                    experiment_prefix=f"{name}-{model.model_version}",
                    metadata={"backend": name, "model_version": model.model_version, "dataset": dataset_name},
                    max_concurrency=max_concurrency,
                    client=client,
                    upload_results=upload,
                )
            rows = list(res)
            # The same summary evaluators LangSmith ran, recomputed on the returned rows (the
            # results object exposes no public accessor for summary scores).
            runs, examples = [r["run"] for r in rows], [r["example"] for r in rows]
            errors = [r["run"].error for r in rows if r["run"].error]
            if errors:
                raise RuntimeError(f"{len(errors)} of {len(rows)} runs failed; first: {errors[0]}")
            out[name] = {"accuracy": accuracy_summary(runs, examples)["score"],
                         "macro_f1": macro_f1_summary(runs, examples)["score"],
                         "n": len(rows), "experiment": res.experiment_name,
                         "url": getattr(res, "url", None) if upload else None, "uploaded": upload}
        except Exception as e:  # noqa: BLE001 - report per backend
            out[name] = {"error": f"{type(e).__name__}: {e}", "uploaded": upload}
    return out
