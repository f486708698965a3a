"""Every file the stages read or write, defined once (dvc.yaml lists the same paths;
tests/test_dvc_yaml.py keeps the two in step). Relative to the repository root, where
DVC runs each stage's command."""

from pathlib import Path

PARAMS = Path("params.yaml")

# fetch: verified archives, named by their sha256, kept across runs so a rerun does not
# download again. Not a DVC output (DVC would delete it before each run) and git-ignored.
DOWNLOAD_CACHE = Path(".cache/downloads")

RAW_DIR = Path("data/raw")  # fetch: <class>/<file> images
MANIFEST = Path("data/manifest.csv")  # fetch: path,label,split,bytes,sha256
VALIDATED = Path("data/validated.csv")  # validate: the manifest rows fit for training (+ `file`, what to read)
NORMALIZED_DIR = Path("data/normalized")  # validate: RGB PNG copies of images train cannot read as they are

REPORTS = Path("reports")
FETCH_REPORT = REPORTS / "fetch.json"  # fetch: where the images came from, what was skipped
VALIDATION_REPORT = REPORTS / "validation.json"  # validate: counts per reason, class and split (DVC metrics)
QUARANTINE = REPORTS / "quarantine.csv"  # validate: every file set aside or flagged, and why
DATA_DOCS = REPORTS / "data_docs"  # validate: GX Data Docs (open index.html)

CACHE_DIR = Path(".cache")  # scratch space (disk cache of decoded images), git-ignored

MODEL = Path("models/model.keras")
RUN_INFO = Path("models/mlflow_run.json")  # train: the MLflow run later stages log into

METRICS = REPORTS / "metrics.json"
PLOTS = REPORTS / "plots"
HISTORY = PLOTS / "history.csv"
AUGMENTATION_PREVIEW = PLOTS / "augmentation.png"
CONFUSION = PLOTS / "confusion.csv"
ROC = PLOTS / "roc.csv"
REGISTER_DECISION = REPORTS / "register.json"

# The metric gate (stages/gate.py): run by CI after the pipeline, not a DVC stage.
BASELINE = Path("baseline/metrics.json")  # committed on purpose: the metrics a change must not fall below
GATE_REPORT = REPORTS / "gate.md"  # the gate's table, for a PR comment or a CI artifact


def project_root(cwd: Path | None = None) -> Path:
    """The repository the pipeline belongs to.

    `dvc exp run --temp` and queued experiments run in a copy under
    `<repo>/.dvc/tmp/exps/...`; they resolve to `<repo>` so that every run shares the
    same MLflow store and download cache rather than a throw-away copy's.
    """
    cwd = (cwd or Path.cwd()).resolve()
    parts = cwd.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd
