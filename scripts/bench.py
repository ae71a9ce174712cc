"""Benchmark fargate-stack against the emulator behind the AWS realism layer.

Runs `up`, a no-op `up`, `status` and `down`, first with the default concurrency and then with
`--max-concurrency 1`, and prints for each: wall time, AWS calls, mutating calls, peak concurrent
calls and the ratio of wall time to the critical path (the longest chain of the layer's own waits,
plus one call latency per dependent call on that chain). Prints figures; asserts nothing.

Usage: scripts/bench [--time-scale 0.05] [--latency-ms 30] [--runs 1]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".venv", "bin", "python")
BIN = os.path.join(ROOT, "target", "debug", "fargate-stack")

# The realism layer's AWS durations (tests/support/README.md) and the stack's own settings
# (config/default.toml) that make up the critical paths.
LAYER = {"nat_pending_s": 90, "nat_deleting_s": 60, "alb_provisioning_s": 150, "task_start_s": 30, "eni_linger_s": 120}
HEALTH_S = 10 * 2  # health_check_interval_seconds x healthy_threshold
DEREGISTRATION_S = 30  # deregistration_delay_seconds


def critical_paths(scale, latency):
    """Seconds of the longest dependency chains, waits scaled, `latency` per dependent call."""
    s = {k: v * scale for k, v in LAYER.items()}
    health = HEALTH_S * scale
    # up, load balancer chain: CreateVpc -> CreateInternetGateway -> AttachInternetGateway ->
    # CreateLoadBalancer, provisioning, then health checks once a task runs.
    alb_active = 4 * latency + s["alb_provisioning_s"]
    # up, task chain: CreateVpc -> CreateInternetGateway -> AttachInternetGateway -> CreateNatGateway,
    # pending -> CreateRouteTable -> CreateRoute -> AssociateRouteTable -> CreateService, task start.
    task_running = 4 * latency + s["nat_pending_s"] + 4 * latency + s["task_start_s"]
    up = max(alb_active, task_running) + health + latency  # + the describe that sees it healthy
    # down, service chain: UpdateService(0) -> DeleteService, draining -> DeleteListener ->
    # DeleteLoadBalancer, ENIs linger -> DeleteSecurityGroup / DeleteSubnet -> DeleteVpc.
    service_chain = 2 * latency + DEREGISTRATION_S * scale + 2 * latency + s["eni_linger_s"] + 2 * latency
    # down, NAT chain (after the service: its route table goes first): DeleteRouteTable ->
    # DeleteNatGateway, deleting -> DetachInternetGateway -> DeleteInternetGateway -> DeleteVpc.
    nat_chain = 2 * latency + DEREGISTRATION_S * scale + 2 * latency + s["nat_deleting_s"] + 3 * latency
    down = max(service_chain, nat_chain)
    return {"up": up, "down": down}


def is_mutating(action):
    return not action.startswith(("Describe", "List", "Get", "Scan", "Query", "BatchGet"))


def start_servers(work, scale, latency_ms):
    env = dict(os.environ, MOTO_LOG=os.path.join(work, "moto.log"))
    out = subprocess.run([os.path.join(ROOT, "scripts", "start-emulator")], env=env, check=True, capture_output=True, text=True)
    moto_port, moto_pid = out.stdout.split()
    call_log = os.path.join(work, "calls.jsonl")
    proxy = subprocess.Popen(
        [PY, os.path.join(ROOT, "tests", "support", "aws_realism.py"), "--upstream", f"http://127.0.0.1:{moto_port}",
         "--time-scale", str(scale), "--latency-ms", str(latency_ms), "--call-log", call_log],
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


def run_phase(name, args, port, call_log, env):
    before = len(read_calls(call_log))
    t0 = time.time()
    p = subprocess.run([BIN, "--endpoint-url", f"http://127.0.0.1:{port}", *args], env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode not in (0, 3):
        sys.exit(f"{name} failed ({p.returncode}):\n{p.stderr}")
    calls = read_calls(call_log)[before:]
    return {"wall": wall, "calls": len(calls), "mutating": sum(is_mutating(c["action"]) for c in calls),
            "peak": peak_concurrency(calls), "rounds": rounds(calls)}


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time-scale", type=float, default=0.05)
    ap.add_argument("--latency-ms", type=float, default=30)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="fargate-stack-bench-")
    moto_port, moto_pid, proxy, port, call_log = start_servers(work, args.time_scale, args.latency_ms)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_PROFILE", None)
    latency = args.latency_ms / 1000
    paths = critical_paths(args.time_scale, latency)
    try:
        # moto's first answer per service takes seconds: warm it up outside the measurements.
        state = os.path.join(work, "warm.json")
        subprocess.run([BIN, "--endpoint-url", f"http://127.0.0.1:{port}", "--state", state, "up", "--no-wait"], env=env,
                       capture_output=True, check=True)
        subprocess.run([BIN, "--endpoint-url", f"http://127.0.0.1:{port}", "--state", state, "down", "--yes"], env=env,
                       capture_output=True, check=True)
        print(f"time scale {args.time_scale} (NAT {LAYER['nat_pending_s'] * args.time_scale:.1f} s, "
              f"ALB {LAYER['alb_provisioning_s'] * args.time_scale:.1f} s, ENIs {LAYER['eni_linger_s'] * args.time_scale:.1f} s), "
              f"{args.latency_ms:.0f} ms per call")
        print(f"{'mode':<12} {'command':<10} {'wall s':>7} {'critical s':>10} {'ratio':>6} {'calls':>6} {'mutating':>8} "
              f"{'peak':>5} {'rounds':>6}")
        results = {}
        for mode, extra in [("concurrent", []), ("sequential", ["--max-concurrency", "1"])]:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")).read()
            state = os.path.join(work, f"{mode}.json")
            phases = [("up", ["up"]), ("no-op up", ["up"]), ("status", ["status"]), ("down", ["down", "--yes"])]
            for name, cmd in phases:
                r = run_phase(name, ["--state", state, *extra, *cmd], port, call_log, env)
                results[(mode, name)] = r
                if name in ("up", "down"):
                    path, ratio = f"{paths[name]:>10.2f}", f"{r['wall'] / paths[name]:>6.2f}"
                else:
                    path, ratio = f"{'-':>10}", f"{'-':>6}"
                print(f"{mode:<12} {name:<10} {r['wall']:>7.2f} {path} {ratio} {r['calls']:>6} "
                      f"{r['mutating']:>8} {r['peak']:>5} {r['rounds']:>6}")
        for name in ("up", "down"):
            gain = results[("sequential", name)]["wall"] / results[("concurrent", name)]["wall"]
            print(f"{name}: concurrent is {gain:.2f}x faster than --max-concurrency 1")
        print("(wall time includes process start; the critical path counts one latency per dependent call)")
    finally:
        proxy.kill()
        os.kill(moto_pid, 9)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
