# The run report: `snakemake --report report.html` gathers the files this rule writes (marked
# `report(...)`, captions in workflow/report/) into one self-contained HTML file, whose first
# view (workflow/report/workflow.rst) is the eval table. The pages are drawn by
# reprolm.htmlreport from the finished artifacts (read only: no payload byte changes) into
# reports/<recipe name>/, not artifacts/: they are a view, not an artifact, so the plan, the
# DVC pipeline and lineage do not know them. `rule all` asks for them, so every run redraws
# them after its last job; editing reprolm/htmlreport redraws them (its code param) and reruns
# nothing else. Include after common.smk.
from reprolm.htmlreport import code_digest as report_code_digest

REPORT_DIR = f"reports/{PLAN.recipe['name']}"
REPORT_CAPTIONS = "../report"

localrules:
    report,


rule report:
    input:
        PLAN.targets(),
    output:
        eval_table=report(
            f"{REPORT_DIR}/eval_table.html",
            caption=f"{REPORT_CAPTIONS}/eval_table.rst",
            category="1. Evaluation",
        ),
        landing=f"{REPORT_DIR}/landing.html",
        curves=report(
            f"{REPORT_DIR}/training_curves.svg",
            caption=f"{REPORT_CAPTIONS}/training_curves.rst",
            category="2. Training",
        ),
        decontamination=report(
            f"{REPORT_DIR}/decontamination.html",
            caption=f"{REPORT_CAPTIONS}/decontamination.rst",
            category="3. Data",
        ),
        jobs=report(
            f"{REPORT_DIR}/jobs.html",
            caption=f"{REPORT_CAPTIONS}/jobs.rst",
            category="4. Jobs",
        ),
        lineage=report(
            f"{REPORT_DIR}/lineage.svg",
            caption=f"{REPORT_CAPTIONS}/lineage.rst",
            category="5. Lineage",
        ),
    log:
        f"logs/report/{PLAN.recipe['name']}.log",
    params:
        name=PLAN.recipe["name"],
        directory=REPORT_DIR,
        code=report_code_digest(),
    threads: 1
    shell:
        "{PYTHON} -m reprolm.htmlreport --name {params.name} --output {params.directory}"
        " {input} > {log} 2>&1"
