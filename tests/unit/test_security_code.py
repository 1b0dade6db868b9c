"""SECURITY.md's promises about code, kept true by reading the source (AST), not by trust.

Every Python file of the platform (``reprolm/``) and the job code (``stages/``, ``evals/``) is
parsed; a call that would load pickled bytes, run remote code, load weights other than
safetensors, download, execute text, or listen beyond this machine fails the test, naming the
file, line and the fix. Rules and their tests are listed in SECURITY.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("reprolm", "stages", "evals")
JOB_CODE = ("stages", "evals")
# Loaders whose class name says they build a tokenizer or a config, never weights.
NOT_WEIGHTS = ("Tokenizer", "Config", "Processor", "FeatureExtractor")
PICKLE_LOADERS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cPickle", "load"),
    ("dill", "load"), ("dill", "loads"), ("cloudpickle", "load"), ("cloudpickle", "loads"),
    ("joblib", "load"), ("pd", "read_pickle"), ("pandas", "read_pickle"),
    ("torch", "load"), ("shelve", "open"), ("marshal", "loads"),
}  # fmt: skip
ANY_HOST = ("0.0.0.0", "[::]")  # in any string: a bind or a URL to every interface


def sources(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Relative path -> text of every Python file of ``packages``."""
    paths = sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in paths}


def _dotted(node: ast.AST) -> tuple[str, ...]:
    """``a.b.c`` of a call's function as ("a", "b", "c"); () when not a plain name chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(parts))
    if isinstance(node, ast.Call):  # e.g. SomeClass().from_pretrained
        return ("()", *reversed(parts))
    return ()


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def problems(relative: str, text: str) -> list[str]:
    """Every broken promise in one file's source, as ``file:line: what and the fix``."""
    job_code = relative.split("/", 1)[0] in JOB_CODE
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{relative}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(ast.parse(text, filename=relative)):
        text_constant = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if text_constant and any(host in node.value for host in ANY_HOST):
            report(node, f"{node.value!r}: servers and clients use 127.0.0.1 only")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name[-1] if name else ""
        for keyword in node.keywords:
            if keyword.arg == "trust_remote_code" and not _is_false(keyword.value):
                report(node, "trust_remote_code must be False (never run a model's own code)")
            if keyword.arg == "allow_pickle" and not _is_false(keyword.value):
                report(node, "allow_pickle must be False")
            value = keyword.value
            if (
                keyword.arg in ("host", "bind")
                and isinstance(value, ast.Constant)
                and (value.value not in ("127.0.0.1", "localhost", None))
            ):
                report(node, f"{keyword.arg}={value.value!r}: bind 127.0.0.1 only")
        if name[-2:] == ("torch", "load"):
            if not _is_true(_keyword(node, "weights_only")):
                report(node, "torch.load needs weights_only=True (no pickled objects)")
        elif tuple(name[-2:]) in PICKLE_LOADERS:
            report(node, f"{'.'.join(name)}: unpickling is refused; use safetensors or JSON")
        if name in (("eval",), ("exec",), ("compile",)) or name[-2:] == ("os", "system"):
            report(node, f"{'.'.join(name)}: text (model output above all) is never executed")
        if job_code and last == "from_pretrained":
            owner = name[-2] if len(name) > 1 else ""
            if not _is_true(_keyword(node, "local_files_only")):
                report(node, f"{owner}.from_pretrained needs local_files_only=True (no download)")
            weights = not any(word in owner for word in NOT_WEIGHTS)
            if weights and not _is_true(_keyword(node, "use_safetensors")):
                report(node, f"{owner}.from_pretrained loads weights: use_safetensors=True")
        if job_code and last == "HFLM" and not _is_true(_keyword(node, "use_safetensors")):
            report(node, "HFLM loads weights: pass use_safetensors=True")
        if job_code and last == "VLLM":
            load_format = _keyword(node, "load_format")
            if not (isinstance(load_format, ast.Constant) and load_format.value == "safetensors"):
                report(node, 'VLLM loads weights: pass load_format="safetensors"')
    return found


def test_the_scan_covers_the_job_code():
    files = set(sources())
    assert "stages/dpo/stage.py" in files and "evals/delta_rot.py" in files
    assert "reprolm/runner.py" in files
    assert len(files) > 100


@pytest.mark.parametrize("package", PACKAGES)
def test_source_keeps_the_security_promises(package):
    found = [p for relative, text in sources((package,)).items() for p in problems(relative, text)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AutoModelForCausalLM.from_pretrained(p, local_files_only=True)", "use_safetensors"),
        ("AutoModel.from_pretrained(p, use_safetensors=True)", "local_files_only"),
        ("AutoTokenizer.from_pretrained(p, local_files_only=True, trust_remote_code=True)",
         "trust_remote_code"),
        ("x = torch.load(f)", "weights_only=True"),
        ("x = torch.load(f, weights_only=False)", "weights_only=True"),
        ("import pickle\nx = pickle.load(f)", "unpickling"),
        ("x = np.load(f, allow_pickle=True)", "allow_pickle"),
        ("app.run(host='0.0.0.0')", "127.0.0.1"),
        ("server.bind(('0.0.0.0', 80))", "127.0.0.1"),
        ("eval(completion)", "never executed"),
        ("HFLM(pretrained=p)", "use_safetensors"),
        ("VLLM(pretrained=p)", "load_format"),
    ],
)  # fmt: skip
def test_each_rule_catches_its_breach(code, expected):
    """The scan is not vacuous: each broken promise planted in job code is reported."""
    found = problems("stages/_planted_breach.py", code)
    assert found and expected in " ".join(found), found
    assert found[0].startswith("stages/_planted_breach.py:")


def test_safe_forms_pass():
    code = (
        "AutoModelForCausalLM.from_pretrained(p, local_files_only=True, use_safetensors=True)\n"
        "AutoTokenizer.from_pretrained(p, local_files_only=True)\n"
        "torch.load(f, weights_only=True)\n"
        "np.load(f, allow_pickle=False)\n"
        "model.eval()\n"
        "re.compile('x')\n"
        "task.split('::')\n"
    )
    assert problems("stages/_safe_forms.py", code) == []


def test_no_task_or_stage_executes_generated_code():
    """No evaluation runs what a model wrote: lm-eval's ``code_eval`` metric (which executes
    completions) and its opt-in switch appear nowhere in job code or task files."""
    files = [p for d in JOB_CODE for p in (ROOT / d).rglob("*") if p.is_file()]
    texts = [p for p in files if p.suffix in (".py", ".yaml", ".yml", ".json", ".jinja")]
    assert texts
    found = [
        p.relative_to(ROOT).as_posix()
        for p in texts
        if any(s in p.read_text(errors="replace") for s in ("code_eval", "HF_ALLOW_CODE_EVAL"))
    ]
    assert not found, f"generated code would be executed by: {found}"


def test_environment_capture_records_allow_listed_variables_only(monkeypatch):
    import json

    from reprolm import environment

    monkeypatch.setenv("HF_TOKEN", "hf_capturedPLANTED0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:capturedPLANTED1@h/db")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    captured = environment.capture(threads=1)
    assert set(captured["env"]) <= set(environment.ENV_ALLOW_LIST)
    assert captured["env"]["OMP_NUM_THREADS"] == "1"
    assert "PLANTED" not in json.dumps(captured)


def test_a_model_with_pickled_weights_only_is_refused_naming_the_fix(tmp_path):
    from evals.lmeval import load_model

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"a pickle")
    with pytest.raises(FileNotFoundError, match=r"no \*\.safetensors weights.*safe_serialization"):
        load_model(tmp_path)
