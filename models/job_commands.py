"""``fluxlens worker`` and ``fluxlens jobs submit|list|cancel|log``: the job queue from a shell.

The shell is trusted like the web server (it can open the database anyway): ``--user`` says on
whose behalf a job is submitted or cancelled (default ``$FLUXLENS_USER`` or ``anonymous``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from catalog import settings
from models.jobs import ANONYMOUS, JobService, JobStore, format_duration, format_time
from models.scenarios import CLI_HELP as SCENARIO_HELP
from models.worker import Worker


def _bbox(text: str) -> list[float]:
    parts = text.replace(" ", "").split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"bbox {text!r}: expected W,S,E,N in degrees")
    return values


def _names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _service(args) -> JobService:
    return JobService(JobStore(args.jobs_db), require_login=False)


def _cmd_worker(args) -> int:
    # INFO records of our packages are shown (fluxlens.cli.setup_logging) and copied into job logs
    worker = Worker(JobStore(args.jobs_db), scheduler=args.scheduler or None)
    worker.install_signal_handlers()
    n = worker.run(once=args.once, poll_s=args.poll, max_jobs=args.max_jobs)
    print(f"worker {worker.worker_id}: ran {n} job(s)")
    return 0


def _cmd_submit(args) -> int:
    if args.kind in ("repredict", "explain"):
        request = {"version": args.model_version, "bbox": args.bbox, "start": args.start, "end": args.end}
        if args.product_name:
            request["product_name"] = args.product_name
        inputs = {r: getattr(args, r) for r in ("forcing", "static", "ssm", "radiation") if getattr(args, r)}
        if inputs:
            request["inputs"] = inputs
        if getattr(args, "scenario", None):
            request["scenario"] = args.scenario
    else:
        request = {"constraint": not args.no_constraint, "start": args.start, "end": args.end}
        if args.features:
            request["features"] = args.features
        if args.sites:
            request["sites"] = args.sites
    job = _service(args).submit(args.kind, request, args.user)
    print(f"job {job.id} queued ({job.kind}) for {job.user}")
    if args.wait:
        return _wait(_service(args), job.id, args.user)
    return 0


def _wait(service: JobService, job_id: int, user: str) -> int:
    while (job := service.job(job_id, user)).is_active:
        time.sleep(1.0)
    print(f"job {job.id} {job.status}" + (f": {job.output or job.error}" if job.output or job.error else ""))
    return 0 if job.status == "succeeded" else 1


def _cmd_list(args) -> int:
    store = JobStore(args.jobs_db)
    jobs = store.jobs(None if args.all else args.user, limit=args.limit)
    if args.json:
        print(json.dumps([dataclasses.asdict(job) for job in jobs], indent=1))
        return 0
    for job in jobs:
        title = f"  {job.request['title']}" if job.request.get("title") else ""
        progress = f"{job.progress_done}/{job.progress_total}" if job.progress_total else "-"
        print(
            f"{job.id:>5} {job.kind:<9} {job.status:<9} {job.user:<12} {progress:>9} "
            f"created {format_time(job.created_at)}  elapsed {format_duration(job.elapsed_s())}  "
            f"{job.output or job.error or ''}{title}"
        )
    return 0


def _cmd_cancel(args) -> int:
    job = _service(args).cancel(args.job_id, args.user)
    state = "cancel requested" if job.is_active else job.status
    print(f"job {job.id}: {state}")
    return 0


def _cmd_log(args) -> int:
    for line in _service(args).logs(args.job_id, args.user):
        print(f"{format_time(line.at)} {line.level:<7} {line.message}")
    return 0


def add_job_commands(subparsers) -> None:
    """Register ``worker`` and ``jobs`` on the ``fluxlens`` command."""
    db_help = (
        "job database: path, sqlite:///path or postgresql://user:password@host:port/db "
        "(default $FLUXLENS_JOBS_DB or <data-dir>/jobs.sqlite)"
    )
    user_default = settings.current().text("FLUXLENS_USER", ANONYMOUS)

    worker = subparsers.add_parser("worker", help="run queued retrain, re-prediction and explanation jobs")
    worker.add_argument("--jobs-db", help=db_help)
    worker.add_argument("--once", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--poll", type=float, default=1.0, help="seconds between queue polls (default 1)")
    worker.add_argument("--max-jobs", type=int, help="exit after this many jobs")
    worker.add_argument("--scheduler", help="dask.distributed scheduler address ($FLUXLENS_DASK_SCHEDULER)")
    worker.set_defaults(func=_cmd_worker)

    jobs = subparsers.add_parser("jobs", help="submit, list and cancel jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)

    def common(p):
        p.add_argument("--jobs-db", help=db_help)
        p.add_argument("--user", default=user_default, help=f"acting user (default {user_default})")

    submit = jobs_sub.add_parser("submit", help="queue a job")
    submit_kinds = submit.add_subparsers(dest="kind", required=True)
    repredict = submit_kinds.add_parser("repredict", help="predict LE/H over a region and period")
    explain = submit_kinds.add_parser(
        "explain",
        help="explanation map: per-pixel-day SHAP contributions of the EF model and the dominant driver",
    )
    for p in (repredict, explain):
        common(p)
        p.add_argument("--model-version", required=True, help="emulator version (fluxlens models)")
        p.add_argument("--bbox", type=_bbox, required=True, help="W,S,E,N in degrees")
        p.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
        p.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
        p.add_argument("--product-name", help="name of the new catalog product")
        for role in ("forcing", "static", "ssm", "radiation"):
            p.add_argument(
                f"--{role}", help=f"{role} product(s), comma-separated (default: the model's own inputs)"
            )
    repredict.add_argument("--scenario", help=SCENARIO_HELP)
    retrain = submit_kinds.add_parser("retrain", help="train a new emulator version")
    common(retrain)
    retrain.add_argument("--features", type=_names, help="comma-separated predictors (default: all)")
    retrain.add_argument("--no-constraint", action="store_true", help="no energy-balance constraint")
    retrain.add_argument("--sites", type=_names, help="comma-separated site ids (default: all)")
    retrain.add_argument("--start", help="first day of the training period")
    retrain.add_argument("--end", help="last day of the training period")
    for p in (repredict, explain, retrain):
        p.add_argument("--wait", action="store_true", help="wait for the job to finish")
        p.set_defaults(func=_cmd_submit)

    listing = jobs_sub.add_parser("list", help="jobs, newest first")
    common(listing)
    listing.add_argument("--all", action="store_true", help="every user's jobs")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_cmd_list)

    cancel = jobs_sub.add_parser("cancel", help="cancel a queued or running job")
    common(cancel)
    cancel.add_argument("job_id", type=int)
    cancel.set_defaults(func=_cmd_cancel)

    log_cmd = jobs_sub.add_parser("log", help="a job's log lines")
    common(log_cmd)
    log_cmd.add_argument("job_id", type=int)
    log_cmd.set_defaults(func=_cmd_log)
