"""Prowler's verdict on the stack: its findings on the stack's own resources, FAILs outside the
accepted list, and accepted checks that no longer fail.

Usage: prowler_verdict.py SCAN.csv STATE.json ACCEPTED.txt   (AWS_ENDPOINT_URL: the emulator)

A finding is the stack's when its resource UID or name holds an ID, ARN or name the state records,
or the stack VPC's default network ACL or security group (which the state does not record; found
through EC2). Account-level findings (password policy, CloudTrail alarms, support role ...) and the
emulator's own default VPC are not the stack's. Exit 1 on any FAIL whose check is not accepted.
"""
import collections
import csv
import json
import sys

import boto3


def accepted_checks(path):
    """`check_id  reason` per line; `#` comments. A check without a reason is an error."""
    accepted = {}
    for number, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        check, _, reason = line.partition(" ")
        if not reason.strip():
            sys.exit(f"{path}:{number}: {check} has no reason")
        accepted[check] = reason.strip()
    return accepted


def stack_needles(state):
    needles = set()
    for entry in state["resources"].values():
        needles.add(entry["id"])
        for value in (entry.get("attrs") or {}).values():
            if isinstance(value, str):
                needles.add(value)
    vpc = state["resources"].get("vpc", {}).get("id")
    if vpc:
        ec2 = boto3.client("ec2")
        in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
        needles.update(a["NetworkAclId"] for a in ec2.describe_network_acls(Filters=in_vpc)["NetworkAcls"])
        needles.update(g["GroupId"] for g in ec2.describe_security_groups(Filters=in_vpc)["SecurityGroups"])
    # Short values (ports, counts) would match anything.
    return {n for n in needles if n and len(n) > 6}


def main(scan, state_path, accepted_path):
    rows = list(csv.DictReader(open(scan, newline=""), delimiter=";"))
    needles = stack_needles(json.load(open(state_path)))
    accepted = accepted_checks(accepted_path)
    ours = [r for r in rows if any(n in r["RESOURCE_UID"] + " " + r["RESOURCE_NAME"] for n in needles)]
    counts = collections.Counter(r["STATUS"] for r in ours)
    print(f"prowler: the stack's resources: {counts['PASS']} PASS, {counts['FAIL']} FAIL "
          f"({len(rows) - len(ours)} findings elsewhere: the emulator's defaults and account-level checks)")
    failing = sorted({(r["CHECK_ID"], r["RESOURCE_UID"]) for r in ours if r["STATUS"] == "FAIL"})
    unexpected = [(c, uid) for c, uid in failing if c not in accepted]
    for check, uid in failing:
        mark = "accepted" if check in accepted else "FAIL    "
        print(f"  {mark} {check:<60} {uid[-70:]}")
    stale = sorted(set(accepted) - {c for c, _ in failing})
    for check in stale:
        print(f"  note: {check} is accepted but did not fail: remove it from {accepted_path}")
    if unexpected:
        print(f"prowler: {len(unexpected)} FAIL outside {accepted_path}", file=sys.stderr)
        return 1
    print("prowler: no FAIL outside the accepted list")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
