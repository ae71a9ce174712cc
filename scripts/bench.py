"""Benchmark fargate-stack against the emulator behind the AWS realism layer.

Runs `up`, a no-op `up`, `status` and `down` (with the default concurrency, and with
`--max-concurrency 1` unless `--modes concurrent`), and prints for each: wall time, AWS calls
(and in how many sequential rounds), mutating calls, peak concurrent calls, and the ratio of
wall time to the critical path of AWS's own waits. Two models of `down`'s critical path are printed:
the reverse of `up` (what a tool that tears down in reverse creation order can reach at best) and
AWS's hard constraints only (what `down` follows). Prints figures; asserts nothing.

With `--scenario deploy`: one `up`, then `deploy --image <another image>` for each of
`--variants` (rolling; canary with `bake_minutes = 0`; canary with `bake_minutes = 1`; the stack's
strategy is switched by an `up` between them, not timed), each printed beside the critical path of
ECS's own waits for that strategy and beside Express Mode's fixed canary (5 %, a 3-minute bake, 100 %,
another 3-minute bake). Run it at AWS's own durations with `--time-scale 1.0` (about 10 minutes).

Usage: scripts/bench [--scenario stack|deploy] [--time-scale 0.05] [--latency-ms 30]
                     [--modes concurrent,sequential] [--variants rolling,canary-bake0,canary-bake1]
                     [--binary target/debug/fargate-stack]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".venv", "bin", "python")

# The AWS world of the benchmark (AWS seconds, scaled by --time-scale), passed to the realism layer:
# NAT gateways take 90 s to come up and 60 s to go, load balancers 150 s to provision, their ENIs
# linger 60 s after they are deleted, tasks start 30 s after their NAT route works and their ENIs
# linger 30 s after they stop; each stage of a canary deployment without a wait of its own lasts 5 s.
WORLD = {"nat_pending_s": 90, "nat_deleting_s": 60, "alb_provisioning_s": 150, "task_start_s": 30,
         "eni_linger_s": 60, "task_eni_linger_s": 30, "deploy_stage_s": 5}
# The stack's own settings (config/default.toml) on the critical paths.
HEALTH_S = 10 * 2  # health_check_interval_seconds x healthy_threshold
DEREGISTRATION_S = 30  # deregistration_delay_seconds
# The deploy scenario: its variants ([deploy] strategy, bake_minutes; canary_percent as Express Mode's),
# and Express Mode's fixed canary: 5 % of the traffic for a 3-minute bake, then 100 % and another 3 minutes.
DEPLOY_VARIANTS = {"rolling": ("rolling", None), "canary-bake0": ("canary", 0), "canary-bake1": ("canary", 1)}
CANARY_PERCENT = 5.0
EXPRESS_BAKE_MINUTES = 3
EXPRESS_BAKES_S = 2 * EXPRESS_BAKE_MINUTES * 60


def critical_paths(scale, latency):
    """Seconds of the longest dependency chains: waits scaled, `latency` per dependent call."""
    w = {k: v * scale for k, v in WORLD.items()}
    health, drain = HEALTH_S * scale, DEREGISTRATION_S * scale
    # up. Load balancer chain: CreateVpc -> CreateInternetGateway -> AttachInternetGateway ->
    # CreateLoadBalancer, provisioning. Task chain: the same three -> CreateNatGateway, pending ->
    # CreateRouteTable -> CreateRoute -> AssociateRouteTable -> CreateService, task start. Health
    # checks pass once both are done; one describe sees it.
    alb_active = 4 * latency + w["alb_provisioning_s"]
    task_running = 4 * latency + w["nat_pending_s"] + 4 * latency + w["task_start_s"]
    up = max(alb_active, task_running) + health + latency
    # down, AWS's hard constraints: three chains start at once.
    #   service: UpdateService(0) -> DeleteService, draining -> task ENIs released -> DeleteSecurityGroup
    #            (task, then the ALB's) -> DeleteVpc
    #   load balancer: DeleteLoadBalancer, ENIs released -> DeleteSubnet / DetachInternetGateway ->
    #            DeleteInternetGateway -> DeleteVpc
    #   NAT: DeleteNatGateway, deleting -> DetachInternetGateway -> DeleteInternetGateway -> DeleteVpc
    service = 2 * latency + drain + w["task_eni_linger_s"] + 3 * latency
    balancer = latency + w["eni_linger_s"] + 3 * latency
    nat = latency + w["nat_deleting_s"] + 3 * latency
    down_hard = max(service, balancer, nat)
    # down, the reverse of up: the listener, the load balancer and the private route tables (so the
    # NAT gateway) wait for the service to be gone; the load balancer's ENIs and the NAT then start.
    service_gone = 2 * latency + drain
    down_reverse = max(service_gone + w["task_eni_linger_s"] + 3 * latency,
                       service_gone + 2 * latency + w["eni_linger_s"] + 3 * latency,
                       service_gone + 2 * latency + w["nat_deleting_s"] + 3 * latency)
    return {"up": up, "down": down_hard, "down_reverse": down_reverse}


def deploy_critical_path(strategy, bake_minutes, scale, latency):
    """Seconds of ECS's own waits in a `deploy --image` of this strategy, as the realism layer runs it,
    plus one call latency per dependent call (RegisterTaskDefinition -> UpdateService -> the
    DescribeServices that sees it done).
    rolling: the new tasks start and pass their health checks; the old ones drain meanwhile (the layer
    stops them at the UpdateService; AWS keeps them until the new ones are healthy, see the README).
    canary: the new revision's full task count starts in the other target group and passes its health
    checks (SCALE_UP; PRE_SCALE_UP runs beside it), POST_SCALE_UP, TEST_TRAFFIC_SHIFT and
    POST_TEST_TRAFFIC_SHIFT, canary_percent of the traffic for bake_minutes, 100 % and the end of
    PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME for bake_minutes, CLEAN_UP (the old
    tasks drain); each stage without a wait of its own lasts deploy_stage_s."""
    start, health, drain = WORLD["task_start_s"] * scale, HEALTH_S * scale, DEREGISTRATION_S * scale
    calls = 3 * latency
    if strategy == "rolling":
        return calls + max(start + health, drain)
    stage, bake = WORLD["deploy_stage_s"] * scale, (bake_minutes or 0) * 60 * scale
    return calls + max(start + health, stage) + 5 * stage + bake + bake + drain


def is_mutating(action):
    return not action.startswith(("Describe", "List", "Get", "Scan", "Query", "BatchGet", "Head"))


def start_servers(work, scale, latency_ms):
    env = dict(os.environ, MOTO_LOG=os.path.join(work, "moto.log"))
    out = subprocess.run([os.path.join(ROOT, "scripts", "start-emulator")], env=env, check=True, capture_output=True, text=True)
    moto_port, moto_pid = out.stdout.split()
    call_log = os.path.join(work, "calls.jsonl")
    config = os.path.join(work, "world.json")
    with open(config, "w", encoding="utf-8") as f:
        json.dump(WORLD, f)
    proxy = subprocess.Popen(
        [PY, os.path.join(ROOT, "tests", "support", "aws_realism.py"), "--upstream", f"http://127.0.0.1:{moto_port}",
         "--time-scale", str(scale), "--latency-ms", str(latency_ms), "--call-log", call_log, "--config", config],
        stdout=subprocess.PIPE, text=True)
    line = proxy.stdout.readline().split()
    assert line and line[0] == "READY", line
    return int(moto_port), int(moto_pid), proxy, int(line[1]), call_log


def read_calls(call_log):
    with open(call_log, encoding="utf-8") as f:
        return [c for c in (json.loads(l) for l in f if l.strip()) if c["service"] != "moto-api"]


def peak_concurrency(calls):
    events = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls], key=lambda e: (e[0], e[1]))
    peak = cur = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    return peak


def rounds(calls):
    """How many sequential rounds the calls needed: chains of calls that did not overlap."""
    n, end = 0, 0.0
    for c in sorted(calls, key=lambda c: c["start"]):
        if c["start"] >= end:
            n += 1
            end = c["end"]
        else:
            end = max(end, c["end"])
    return n


def run_phase(binary, name, args, port, call_log, env):
    """Run one command; its wall time, its AWS calls, and its stdout lines with when each came (s)."""
    before = len(read_calls(call_log))
    lines = []
    t0 = time.time()
    p = subprocess.Popen([binary, "--endpoint-url", f"http://127.0.0.1:{port}", *args], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    errors = []
    drain = threading.Thread(target=lambda: errors.append(p.stderr.read()))
    drain.start()
    for line in p.stdout:
        lines.append((time.time() - t0, line))
    p.wait()
    wall = time.time() - t0
    drain.join()
    if p.returncode not in (0, 3):
        sys.exit(f"{name} failed ({p.returncode}):\n{''.join(l for _, l in lines)}{errors[0]}")
    calls = read_calls(call_log)[before:]
    return {"wall": wall, "calls": len(calls), "rounds": rounds(calls), "mutating": sum(is_mutating(c["action"]) for c in calls),
            "refused": sum(1 for c in calls if c["error"] and is_mutating(c["action"])), "peak": peak_concurrency(calls),
            "lines": lines}


def print_world(s, latency_ms):
    print(f"time scale {s}: NAT up {WORLD['nat_pending_s'] * s:.1f} s / down {WORLD['nat_deleting_s'] * s:.1f} s, "
          f"ALB {WORLD['alb_provisioning_s'] * s:.1f} s, ALB ENIs {WORLD['eni_linger_s'] * s:.1f} s, "
          f"tasks start {WORLD['task_start_s'] * s:.1f} s, task ENIs {WORLD['task_eni_linger_s'] * s:.1f} s, "
          f"drain {DEREGISTRATION_S * s:.1f} s, health {HEALTH_S * s:.1f} s; {latency_ms:.0f} ms per call")


def reset(port):
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")).read()


def stack_scenario(args, binary, port, call_log, env, work):
    """up, no-op up, status, down, per mode."""
    paths = critical_paths(args.time_scale, args.latency_ms / 1000)
    # moto's first answer per service takes seconds: warm it up outside the measurements.
    state = os.path.join(work, "warm.json")
    for cmd in (["up", "--no-wait"], ["down", "--yes"]):
        subprocess.run([binary, "--endpoint-url", f"http://127.0.0.1:{port}", "--state", state, *cmd], env=env,
                       capture_output=True, check=True)
    print_world(args.time_scale, args.latency_ms)
    print(f"critical path of up: {paths['up']:.2f} s; of down: {paths['down']:.2f} s along AWS's hard constraints, "
          f"{paths['down_reverse']:.2f} s along the reverse of up")
    print(f"{'mode':<12} {'command':<10} {'wall s':>7} {'critical s':>10} {'ratio':>6} {'calls':>6} {'rounds':>6} "
          f"{'mutating':>8} {'refused':>7} {'peak':>5}")
    results = {}
    for mode in args.modes.split(","):
        extra = ["--max-concurrency", "1"] if mode == "sequential" else []
        reset(port)
        state = os.path.join(work, f"{mode}.json")
        phases = [("up", ["up"]), ("no-op up", ["up"]), ("status", ["status"]), ("down", ["down", "--yes"])]
        for name, cmd in phases:
            r = run_phase(binary, name, ["--state", state, *extra, *cmd], port, call_log, env)
            results[(mode, name)] = r
            if name in ("up", "down"):
                path, ratio = f"{paths[name]:>10.2f}", f"{r['wall'] / paths[name]:>6.2f}"
            else:
                path, ratio = f"{'-':>10}", f"{'-':>6}"
            print(f"{mode:<12} {name:<10} {r['wall']:>7.2f} {path} {ratio} {r['calls']:>6} {r['rounds']:>6} "
                  f"{r['mutating']:>8} {r['refused']:>7} {r['peak']:>5}")
    if ("sequential", "up") in results and ("concurrent", "up") in results:
        for name in ("up", "down"):
            gain = results[("sequential", name)]["wall"] / results[("concurrent", name)]["wall"]
            print(f"{name}: concurrent is {gain:.2f}x faster than --max-concurrency 1")
    print("(wall time includes process start; rounds = sequential rounds of calls; refused = mutating calls AWS"
          " refused, e.g. DependencyViolation)")


def deploy_config(strategy, bake_minutes):
    """The built-in stack with this [deploy] strategy (rolling: the built-in config as it is)."""
    with open(os.path.join(ROOT, "config", "default.toml"), encoding="utf-8") as f:
        text = f.read()
    if strategy == "rolling":
        return text
    head, sep, rest = text.partition("\n[deploy]\n")
    assert sep, "config/default.toml has a [deploy] section"
    section, nxt, tail = rest.partition("\n[")
    for key, value in (("strategy", f'"{strategy}"'), ("canary_percent", CANARY_PERCENT), ("bake_minutes", bake_minutes)):
        line = re.compile(rf"^{key} = \S+", re.M)
        section = line.sub(f"{key} = {value}", section, count=1) if line.search(section) else f"{key} = {value}\n" + section
    return head + sep + section + nxt + tail


def deploy_phases(lines):
    """`deploy_phase` events (`--output json`): when each phase was first seen, with the traffic split."""
    seen = []
    for t, line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict) or ev.get("event") != "deploy_phase":
            continue
        traffic = ev.get("traffic") or {}
        label = ev.get("phase", "?") + (f" {traffic.get('old')}/{traffic.get('new')}" if traffic else "")
        if not seen or seen[-1][1] != label:
            seen.append((t, label))
    return ", ".join(f"{label} at {t:.1f} s" for t, label in seen)


def deploy_scenario(args, binary, port, call_log, env, work):
    """One up, then `deploy --image` per variant; the strategy is switched by an `up` between them."""
    s, latency = args.time_scale, args.latency_ms / 1000
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in DEPLOY_VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(DEPLOY_VARIANTS)}")
    print_world(s, args.latency_ms)
    config, state = os.path.join(work, "deploy.toml"), os.path.join(work, "deploy.json")
    base = ["--config", config, "--state", state]
    reset(port)
    current = None
    start, health, drain = WORLD["task_start_s"] * s, HEALTH_S * s, DEREGISTRATION_S * s
    express = deploy_critical_path("canary", EXPRESS_BAKE_MINUTES, s, latency)
    print(f"{'variant':<14} {'command':<26} {'wall s':>7} {'critical s':>10} {'ratio':>6} {'calls':>6} {'mutating':>8} "
          f"{'peak':>5}")
    for n, variant in enumerate(variants):
        strategy, bake = DEPLOY_VARIANTS[variant]
        if (strategy, bake) != current:
            with open(config, "w", encoding="utf-8") as f:
                f.write(deploy_config(strategy, bake))
            cmd = ["up", "--yes", "--no-verify"]
            r = run_phase(binary, "up", [*base, *cmd], port, call_log, env)
            print(f"{variant:<14} {'up' if current is None else 'up (switch)':<26} {r['wall']:>7.2f} {'-':>10} {'-':>6} "
                  f"{r['calls']:>6} {r['mutating']:>8} {r['peak']:>5}")
            current = (strategy, bake)
        image = f"nginx:1.{27 + n}"
        r = run_phase(binary, "deploy", [*base, "--output", "json", "deploy", "--image", image, "--no-verify"], port,
                      call_log, env)
        path = deploy_critical_path(strategy, bake, s, latency)
        print(f"{variant:<14} {'deploy --image ' + image:<26} {r['wall']:>7.2f} {path:>10.2f} {r['wall'] / path:>6.2f} "
              f"{r['calls']:>6} {r['mutating']:>8} {r['peak']:>5}")
        phases = deploy_phases(r["lines"])
        if phases:
            print(f"{'':<14} phases: {phases}")
    print(f"Express Mode (fixed canary: 5 % for 3 min, 100 %, 3 more min): >= {EXPRESS_BAKES_S * s:.2f} s of bakes "
          f"alone, {express:.2f} s on the same critical path as a canary with bake_minutes = 3")
    print(f"(critical path, rolling: max(task start {start:.1f} s + health {health:.1f} s, drain {drain:.1f} s); canary:"
          f" task start + health + 5 stages of {WORLD['deploy_stage_s'] * s:.1f} s + canary bake + bake + drain; + 3 calls."
          f" Wall time includes process start; the URL check is off (--no-verify): the emulator's load balancer has no"
          f" address)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=("stack", "deploy"), default="stack")
    ap.add_argument("--time-scale", type=float, default=0.05)
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--modes", default="concurrent,sequential")
    ap.add_argument("--variants", default=",".join(DEPLOY_VARIANTS))
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "debug", "fargate-stack"))
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured, even into a pipe
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # still stop the servers (finally below)
    if args.binary == os.path.join(ROOT, "target", "debug", "fargate-stack"):
        subprocess.run(["cargo", "build", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="fargate-stack-bench-")
    moto_port, moto_pid, proxy, port, call_log = start_servers(work, args.time_scale, args.latency_ms)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_PROFILE", None)
    scenario = deploy_scenario if args.scenario == "deploy" else stack_scenario
    try:
        scenario(args, args.binary, port, call_log, env, work)
    finally:
        proxy.kill()
        os.kill(moto_pid, 9)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
