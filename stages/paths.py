"""Every file the stages read or write, defined once (dvc.yaml lists the same paths;
tests/test_dvc_yaml.py keeps the two in step). Relative to the repository root, where
DVC runs each stage's command."""

from pathlib import Path

PARAMS = Path("params.yaml")

RAW_DIR = Path("data/raw")  # fetch: <class>/<file> images
MANIFEST = Path("data/manifest.csv")  # fetch: path,label,split,bytes,sha256
VALIDATED = Path("data/validated.csv")  # validate: the manifest rows fit for training (+ `file`, what to read)
NORMALIZED_DIR = Path("data/normalized")  # validate: RGB PNG copies of images train cannot read as they are

REPORTS = Path("reports")
VALIDATION_REPORT = REPORTS / "validation.json"  # validate: counts per reason, class and split (DVC metrics)
QUARANTINE = REPORTS / "quarantine.csv"  # validate: every file set aside or flagged, and why
DATA_DOCS = REPORTS / "data_docs"  # validate: GX Data Docs (open index.html)

MODEL = Path("models/model.keras")
RUN_INFO = Path("models/mlflow_run.json")  # train: the MLflow run later stages log into

METRICS = REPORTS / "metrics.json"
PLOTS = REPORTS / "plots"
HISTORY = PLOTS / "history.csv"
CONFUSION = PLOTS / "confusion.csv"
ROC = PLOTS / "roc.csv"
REGISTER_DECISION = REPORTS / "register.json"
