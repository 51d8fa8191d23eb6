"""The AIDE adapter: aideml's own loop (agent.step, save_run) without its full-screen UI, with:

- every model through the gateway (aideml sends OpenAI names to a fixed endpoint: repointed here);
- the variant's kwargs as AIDE config keys; keys AIDE does not know (mlebench's `agent.time_limit`
  would fail its config with ConfigKeyError) are dropped with a warning;
- each node's submission.csv kept as it is made (every node overwrites the same file), so the best
  node's own submission goes to $SUBMISSION_DIR, its code to $CODE_DIR, the journal to $LOGS_DIR/aide;
- the journal converted to $LOGS_DIR/trajectory.json.
"""

import json
import os
import shutil
import sys
import time
from pathlib import Path

AIDE_ENV = os.environ.get("AIDE_ENV") or os.path.join(sys.prefix, "lib", "harness-aide")
if not os.path.isdir(os.path.join(AIDE_ENV, "aide")):
    sys.exit(f"aide: no aideml environment at {AIDE_ENV}: run harness/agents/aide/install.sh once")
sys.path.insert(0, AIDE_ENV)

from omegaconf import OmegaConf  # noqa: E402

import aide  # noqa: E402
from aide.agent import Agent  # noqa: E402
from aide.backend import backend_openai  # noqa: E402
from aide.interpreter import Interpreter  # noqa: E402
from aide.journal import Journal  # noqa: E402
from aide.utils.config import load_task_desc, prep_agent_workspace, prep_cfg, save_run  # noqa: E402

from harness.llm.aide_journal import best_node, journal_to_trajectory  # noqa: E402
from harness.llm.trajectory import Outcome, write_trajectory  # noqa: E402

data = Path(os.environ.get("DATA_DIR", "/home/data"))
submission = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
code_dir = Path(os.environ.get("CODE_DIR", "/home/code"))
logs = Path(os.environ.get("LOGS_DIR", "/home/logs"))
kwargs = json.loads(os.environ.get("HARNESS_AGENT_KWARGS") or "{}")
model = os.environ.get("HARNESS_LLM_MODEL")
backend_openai.OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", backend_openai.OPENAI_BASE_URL)

cfg = OmegaConf.load(Path(aide.__file__).parent / "utils" / "config.yaml")
dotlist = []
for key, value in kwargs.items():
    if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
        print(f"aide: ignoring kwarg {key}={value!r}: not an AIDE config key", file=sys.stderr)
        continue
    dotlist.append(f"{key}={value}")
cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotlist))
cfg.data_dir = str(data)
cfg.desc_file = os.environ.get("INSTRUCTIONS", "/home/instructions.md")
cfg.exp_name = "exp"
cfg.log_dir = str(logs / "aide")
cfg.workspace_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), "aide-workspaces")
cfg.generate_report = False
if model:
    cfg.agent.code.model = cfg.agent.feedback.model = model
cfg = prep_cfg(cfg)
task_desc = load_task_desc(cfg)
prep_agent_workspace(cfg)
journal = Journal()
agent = Agent(task_desc=task_desc, cfg=cfg, journal=journal)
interpreter = Interpreter(cfg.workspace_dir, **OmegaConf.to_container(cfg.exec))
kept = logs / "aide" / "submissions"
kept.mkdir(parents=True, exist_ok=True)
working = Path(cfg.workspace_dir) / "working" / "submission.csv"
deadline = time.monotonic() + float(os.environ.get("TIME_LIMIT_SECS", 3600)) * 0.9
started = time.time()
while len(journal) < cfg.agent.steps and time.monotonic() < deadline:
    agent.step(exec_callback=interpreter.run)
    node = journal.nodes[-1]
    if working.is_file():
        shutil.move(str(working), kept / f"{node.id}.csv")  # the next node starts without it
    save_run(cfg, journal)
    print(f"aide: step {len(journal)}/{cfg.agent.steps}: metric {node.metric.value} buggy {node.is_buggy}", flush=True)
interpreter.cleanup_session()

journal_dict = json.loads((Path(cfg.log_dir) / "journal.json").read_text())
best = best_node(journal_dict)
reason = f"{len(journal)} step(s)"
if best is not None:
    (code_dir / "solution.py").write_text(best["code"])
    if (kept / f"{best['id']}.csv").is_file():
        shutil.copyfile(kept / f"{best['id']}.csv", submission / "submission.csv")
        reason += f"; best node {best['id']} (metric {best['metric']['value']})"
    else:
        reason += f"; best node {best['id']} wrote no submission.csv"
else:
    reason += "; no working solution"
outcome = Outcome(submission=(submission / "submission.csv").is_file(), reason=reason, steps=len(journal))
traj = journal_to_trajectory(journal_dict, agent=os.environ.get("HARNESS_AGENT_ID", "aide"), model=cfg.agent.code.model,
                             settings={"kwargs": kwargs, "steps": cfg.agent.steps, "exec_timeout_s": cfg.exec.timeout,
                                       "feedback_model": cfg.agent.feedback.model},
                             attempt_id=os.environ.get("HARNESS_ATTEMPT_ID"), competition_id=os.environ.get("COMPETITION_ID"),
                             outcome=outcome)
write_trajectory(traj, logs / "trajectory.json")
print(f"aide: {reason}", flush=True)
sys.exit(0 if outcome.submission else 1)
