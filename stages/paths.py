"""Every file the stages read or write, defined once (dvc.yaml lists the same paths;
tests/test_dvc_yaml.py keeps the two in step). Relative to the repository root, where
DVC runs each stage's command."""

from pathlib import Path

PARAMS = Path("params.yaml")

RAW_DIR = Path("data/raw")  # fetch: <class>/<file> images
MANIFEST = Path("data/manifest.csv")  # fetch: path,label,split,bytes,sha256
VALIDATED = Path("data/validated.csv")  # validate: the manifest rows fit for training

REPORTS = Path("reports")
VALIDATION_REPORT = REPORTS / "validation.json"
DATA_DOCS = REPORTS / "data_docs"

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
