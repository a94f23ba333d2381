"""``medforget study``: a grid of unlearning experiments from one config file, resumable and cached.

A study answers the questions a model owner asks before trusting an unlearning method on their
own data: does it match retraining on the retain and forget sets, what does it cost in test
accuracy and missed disease, does that grow with the size of the request, is it fair to easy and
hard samples? The grid is datasets x forget designs x seeds x methods.

Every expensive result is addressed by its content, so an interrupted study resumes and a re-run
does no work twice:

* original models: ``<cache>/originals/<sha256(data spec, training recipe)>.safetensors``, shared by
  every study and by ``medforget tune``;
* retrain baselines: ``<cache>/baselines/`` (the same cache ``medforget unlearn`` uses);
* runs: ``<out>/runs/<dataset>/<forget>/seed<k>/<method>.report.json``, each holding the hash of
  everything that determined it; a run whose inputs changed is done again.

Output layout (``<out>`` defaults to ``studies/out/<study name>``)::

    study.json        the validated config, medforget version, machine, command, timings
    results.csv       one tidy row per (dataset, forget design, method, seed)
    summary.md        mean ± sd over seeds, findings, plots
    plots/*.png       test accuracy and FNR vs forget size; avg gap vs cost; difficulty slices
    runs/...          the full JSON report of every run
"""

from medforget.study.config import StudyConfig, load_study_config, study_config_schema
from medforget.study.runner import StudyResult, ensure_original, run_study, study_result_schema
from medforget.study.tables import markdown_table, read_results, summarise

__all__ = [
    "StudyConfig",
    "StudyResult",
    "ensure_original",
    "load_study_config",
    "markdown_table",
    "read_results",
    "run_study",
    "study_config_schema",
    "study_result_schema",
    "summarise",
]
