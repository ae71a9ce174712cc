#!/usr/bin/env python3
"""AWS realism layer: a loopback HTTP proxy between an AWS SDK client and the moto emulator.

It forwards every request unchanged to moto, except where real AWS would answer differently:
resources take time to become ready (NAT gateways, load balancers, DynamoDB tables, ECS tasks and
their load-balancer targets, ACM certificates, Route 53 changes), AWS makes checks that moto skips
(DependencyViolation, duplicate listeners, Fargate cpu/memory pairs, IAM propagation, certificates
that are not issued, Route 53 change batches, S3 regions and bucket names, ...), and the service
throttles or fails now and then (fault injection). See README.md beside this file.

Services: ec2, elasticloadbalancing, iam, sts (query protocols); ecs, dynamodb, logs, acm,
application-autoscaling (JSON protocols); route53 and s3 (REST-XML).

Python 3.11 standard library only.

    python aws_realism.py --upstream http://127.0.0.1:MOTOPORT [--port 0] [--time-scale 0.01]
        [--fault-rate 0.0] [--fault-seed 1] [--call-log FILE.jsonl] [--config JSON_FILE]

Prints `READY <port>` once listening, then serves until killed.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import os
import hashlib
import http.client
import http.server
import ipaddress
import json
import random
import re
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
import zlib
import xml.etree.ElementTree as ET
from email.utils import formatdate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbor_json  # noqa: E402  (CloudWatch's Smithy RPC v2 CBOR <-> awsJson1_0, shared with moto_cbor.py)

# Durations are in AWS seconds; each is multiplied by time_scale when used.
DEFAULTS: dict = {
    "time_scale": 1.0,
    "nat_pending_s": 90.0,
    "nat_deleting_s": 60.0,
    "alb_provisioning_s": 150.0,
    "table_creating_s": 10.0,
    "table_deleting_s": 5.0,
    "task_start_s": 30.0,
    "iam_propagation_s": 10.0,
    "eni_linger_s": 120.0,
    "task_eni_linger_s": 30.0,
    "default_deregistration_delay_s": 300.0,
    "default_health_check_interval_s": 30.0,
    "default_healthy_threshold_count": 5,
    "client_token_window_s": 86400.0,
    "fault_rate": 0.0,
    "fault_seed": 1,
    "fault_throttle_share": 0.8,
    "fault_services": None,
    "fault_actions": None,
    "ec2_throttle_status": 503,
    "detach_igw_checks_load_balancers": True,
    "upstream_timeout_s": 60.0,
    "latency_ms": 0.0,
    "failing_image_marker": "fails-health-checks",
    "unpullable_image_marker": "no-such-tag",
    "circuit_breaker_min_failed_tasks": 3,
    # ECS deployment strategies (BLUE_GREEN, CANARY, LINEAR): how long each lifecycle stage without a wait of its
    # own (PRE_SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT, the production shift's own
    # step, POST_PRODUCTION_TRAFFIC_SHIFT) lasts (a guess: ECS publishes none).
    "deploy_stage_s": 5.0,
    # How long after a rolling deployment reached its steady state ECS still watches its alarms (ECS computes
    # a bake time from the alarms' configuration; not published, so 0 by default).
    "rolling_alarm_bake_s": 0.0,
    "container_logs": True,
    "acm_record_delay_s": 5.0,
    "acm_validation_s": 120.0,
    "acm_validation_timeout_s": 259200.0,
    "acm_idempotency_window_s": 3600.0,
    "acm_release_s": 10.0,
    "route53_change_s": 40.0,
    "route53_prior_request_share": 0.25,
    "aas_service_visible_s": 5.0,
    "aas_create_service_linked_role": True,
    "aas_target_visible_s": 2.0,
    "s3_region_mismatch": "redirect",
    "s3_aws_defaults": True,
    "s3_conditional_conflict_rate": 0.0,
    # Action-level IAM: {ACCESS_KEY_ID: {"principal": ARN, "policy_file": PATH}}. A call signed with
    # a listed key whose IAM action (or an action AWS checks with it) no Allow of the policy file
    # matches gets AWS's denial for its protocol. The file is read again whenever it changes.
    "iam_policies": {},
    "s3_denied_buckets": [],
    # A tag-enforcing service control policy: {TAG_KEY: VALUE}. A create of a taggable resource
    # (TAGGED_CREATES) whose request does not carry each tag is denied as an SCP denies it
    # (aws:RequestTag/KEY), so a tool that tags after the create fails as it would on AWS.
    "required_request_tags": {},
}
# The create calls that make a taggable resource, per service (what a tag-enforcing SCP covers).
TAGGED_CREATES = {
    "ec2": {"CreateVpc", "CreateSubnet", "CreateInternetGateway", "AllocateAddress", "CreateNatGateway",
            "CreateRouteTable", "CreateSecurityGroup", "CreateVpcEndpoint", "CreateFlowLogs"},
    "ecs": {"CreateCluster", "RegisterTaskDefinition", "CreateService"},
    "elasticloadbalancing": {"CreateLoadBalancer", "CreateTargetGroup", "CreateListener"},
    "iam": {"CreateRole"},
    "dynamodb": {"CreateTable"},
    "logs": {"CreateLogGroup"},
    "s3": {"CreateBucket"},
    "acm": {"RequestCertificate"},
    "application-autoscaling": {"RegisterScalableTarget"},
    "monitoring": {"PutMetricAlarm"},
}
DURATION_KEYS = {
    "nat_pending_s", "nat_deleting_s", "alb_provisioning_s", "table_creating_s", "table_deleting_s",
    "task_start_s", "iam_propagation_s", "eni_linger_s", "task_eni_linger_s", "default_deregistration_delay_s",
    "default_health_check_interval_s", "client_token_window_s", "acm_record_delay_s", "acm_validation_s",
    "acm_validation_timeout_s", "acm_idempotency_window_s", "acm_release_s", "route53_change_s",
    "aas_service_visible_s", "aas_target_visible_s",
}
S3_REGION_MISMATCH = ("redirect", "malformed", "off")

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15"
QUERY_NS = {
    "elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}
QUERY_VERSION = {"ec2": "2016-11-15", "elasticloadbalancing": "2015-12-01", "iam": "2010-05-08", "sts": "2011-06-15"}
JSON_TARGET = {
    "ecs": "AmazonEC2ContainerServiceV20141113",
    "dynamodb": "DynamoDB_20120810",
    "logs": "Logs_20140328",
    "acm": "CertificateManager",
    "application-autoscaling": "AnyScaleFrontendService",
    "ssm": "AmazonSSM",
    "secretsmanager": "secretsmanager",
    "wafv2": "AWSWAF_20190729",
    "kms": "TrentService",
    "monitoring": cbor_json.TARGET_PREFIX,
    "pricing": "AWSPriceListService",
}
JSON_CT = {"dynamodb": "application/x-amz-json-1.0", "ecs": "application/x-amz-json-1.1", "logs": "application/x-amz-json-1.1",
           "acm": "application/x-amz-json-1.1", "application-autoscaling": "application/x-amz-json-1.1",
           "ssm": "application/x-amz-json-1.1", "secretsmanager": "application/x-amz-json-1.1",
           "wafv2": "application/x-amz-json-1.1", "kms": "application/x-amz-json-1.1",
           "pricing": "application/x-amz-json-1.1", "monitoring": cbor_json.JSON_CONTENT_TYPE}
PROTOCOL = {
    "ec2": "ec2", "elasticloadbalancing": "query", "iam": "query", "sts": "query",
    "ecs": "json", "dynamodb": "json", "logs": "json", "acm": "json", "application-autoscaling": "json", "ssm": "json", "secretsmanager": "json",
    "wafv2": "json", "kms": "json", "pricing": "json", "monitoring": "json",
    "route53": "rest-xml", "s3": "s3",
}
HOOK_KEY = {"elasticloadbalancing": "elb", "application-autoscaling": "aas", "monitoring": "cw"}

# The Price List API (moto has none): GetProducts answers from these products, in AWS's shape (each
# PriceList entry a JSON document in a string: product.attributes, terms.OnDemand.*.priceDimensions.*
# .pricePerUnit.USD). us-east-1's prices of the default stack's keys, each a little off the repository's
# table (config/prices.toml) so that a test can tell which one a bill used. Left out on purpose:
# VendedLog-Bytes (flow logs' ingestion), for the tool's fallback to the table. Only TERM_MATCH filters;
# the API has endpoints in us-east-1, eu-central-1 and ap-south-1 only.
# Pages: AWS answers at most MaxResults entries a page (1 to 100) and a NextToken while more are left;
# like AWS's paged APIs generally, a page may hold fewer, none even, with a NextToken. The layer pages
# as if filtering each page of the service's whole product list: a page looks at PRICE_SCAN_PAGE
# products (a guess, small so that a key's product sits on page 2 or 3 — DynamoDB storage, PITR,
# CloudWatch alarms and metrics below), so a reader of the first page only misses them.
PRICING_ENDPOINT_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
PRICE_SCAN_PAGE = 2
PRICE_PRODUCTS = [
    # (serviceCode, productFamily, regionCode, usagetype, unit, [(beginRange, USD), ...])
    ("AmazonEC2", "NAT Gateway", "us-east-1", "NatGateway-Hours", "Hrs", [("0", "0.0480000000")]),
    ("AmazonEC2", "NAT Gateway", "us-east-1", "NatGateway-Bytes", "GB", [("0", "0.0480000000")]),
    ("AmazonVPC", "VpcPublicIPv4Address", "us-east-1", "PublicIPv4:InUseAddress", "Hrs", [("0", "0.0060000000")]),
    ("AWSELB", "Load Balancer-Application", "us-east-1", "LoadBalancerUsage", "Hrs", [("0", "0.0250000000")]),
    ("AWSELB", "Load Balancer-Application", "us-east-1", "LCUUsage", "LCU-Hrs", [("0", "0.0090000000")]),
    ("AmazonECS", "Compute", "us-east-1", "USE1-Fargate-vCPU-Hours:perCPU", "hours", [("0", "0.0500000000")]),
    ("AmazonECS", "Compute", "us-east-1", "USE1-Fargate-GB-Hours", "hours", [("0", "0.0050000000")]),
    ("AmazonCloudWatch", "Data Payload", "us-east-1", "DataProcessing-Bytes", "GB", [("0", "0.5500000000")]),
    ("AmazonCloudWatch", "Storage Snapshot", "us-east-1", "TimedStorage-ByteHrs", "GB-Mo", [("0", "0.0330000000")]),
    ("AmazonCloudWatch", "Alarm", "us-east-1", "CW:AlarmMonitorUsage", "Alarms", [("0", "0.1100000000")]),
    ("AmazonCloudWatch", "Metric", "us-east-1", "CW:MetricMonitorUsage", "Metrics",
     [("0", "0.3300000000"), ("10000", "0.1000000000")]),
    ("AmazonDynamoDB", "Amazon DynamoDB PayPerRequest Throughput", "us-east-1", "WriteRequestUnits", "WriteRequestUnits",
     [("0", "0.0000006500")]),
    ("AmazonDynamoDB", "Amazon DynamoDB PayPerRequest Throughput", "us-east-1", "ReadRequestUnits", "ReadRequestUnits",
     [("0", "0.0000001300")]),
    # A free first tier, as DynamoDB storage has.
    ("AmazonDynamoDB", "Database Storage", "us-east-1", "TimedStorage-ByteHrs", "GB-Mo",
     [("0", "0.0000000000"), ("25", "0.2600000000")]),
    ("AmazonDynamoDB", "Amazon DynamoDB On-Demand Backup Storage", "us-east-1", "TimedBackupStorage-ByteHrs", "GB-Mo",
     [("0", "0.1100000000")]),
    ("AmazonDynamoDB", "Amazon DynamoDB Point-In-Time-Restore", "us-east-1", "TimedPITRStorage-ByteHrs", "GB-Mo",
     [("0", "0.2100000000")]),
    ("AmazonS3", "Storage", "us-east-1", "TimedStorage-ByteHrs", "GB-Mo",
     [("0", "0.0240000000"), ("51200", "0.0220000000")]),
]


def price_list_entry(service_code, family, region, usage_type, unit, tiers) -> dict:
    """One product of the Price List, as GetProducts answers it (before it is put in a string)."""
    sku = uuid.uuid5(uuid.NAMESPACE_URL, f"{service_code}/{region}/{usage_type}").hex[:16].upper()
    term = f"{sku}.JRTCKXETXF"
    dimensions = {}
    for i, (begin, usd) in enumerate(tiers):
        end = tiers[i + 1][0] if i + 1 < len(tiers) else "Inf"
        rate = f"{term}.{6 + i}YS6EN2CT7"
        dimensions[rate] = {"unit": unit, "endRange": end, "description": f"${float(usd)} per {unit} ({usage_type})",
                            "appliesTo": [], "rateCode": rate, "beginRange": begin, "pricePerUnit": {"USD": usd}}
    return {
        "product": {"productFamily": family, "sku": sku, "attributes": {
            "regionCode": region, "servicecode": service_code, "usagetype": usage_type, "location": "US East (N. Virginia)",
            "locationType": "AWS Region", "operation": "", "servicename": service_code}},
        "serviceCode": service_code,
        "terms": {"OnDemand": {term: {"priceDimensions": dimensions, "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z",
                                      "offerTermCode": "JRTCKXETXF", "termAttributes": {}}}},
        "version": "20261120183036", "publicationDate": "2026-11-20T18:30:36Z",
    }


class InvalidNextToken(ValueError):
    """GetProducts' InvalidNextTokenException."""


def get_products(params: dict) -> dict:
    """GetProducts over PRICE_PRODUCTS: -> the answer, or raises ValueError(message) for a request AWS refuses."""
    service_code = params.get("ServiceCode")
    if not service_code:
        raise ValueError("ServiceCode is required")
    if params.get("FormatVersion", "aws_v1") != "aws_v1":
        raise ValueError(f"Unsupported FormatVersion: {params.get('FormatVersion')}")
    filters = params.get("Filters") or []
    for f in filters:
        if f.get("Type") != "TERM_MATCH" or not f.get("Field") or "Value" not in f:
            raise ValueError(f"the realism proxy serves TERM_MATCH filters with Field and Value only: {f}")
    max_results = params.get("MaxResults", 100)
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise ValueError(f"MaxResults must be between 1 and 100: {max_results}")
    entries = [price_list_entry(*p) for p in PRICE_PRODUCTS if p[0] == service_code]
    query = hashlib.sha256(json.dumps([service_code, filters], sort_keys=True).encode()).hexdigest()[:16]
    start = 0
    if params.get("NextToken") is not None:
        try:
            token = json.loads(base64.urlsafe_b64decode(params["NextToken"].encode()))
            start, asked = int(token["at"]), token["q"]
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidNextToken(f"the NextToken is not one GetProducts gave: {e}") from None
        if asked != query or not 0 < start < len(entries):
            raise InvalidNextToken("the NextToken was given for another request")
    wanted = lambda e: all(e["product"]["attributes"].get(f["Field"]) == f["Value"] for f in filters)
    page, at = [], start
    while at < len(entries) and at - start < PRICE_SCAN_PAGE and len(page) < max_results:
        if wanted(entries[at]):
            page.append(json.dumps(entries[at]))
        at += 1
    answer = {"FormatVersion": "aws_v1", "PriceList": page}
    if at < len(entries):
        answer["NextToken"] = base64.urlsafe_b64encode(json.dumps({"at": at, "q": query}).encode()).decode()
    return answer

THROTTLE_CODE = {
    "ec2": "RequestLimitExceeded", "elasticloadbalancing": "Throttling", "iam": "Throttling", "sts": "Throttling",
    "ecs": "ThrottlingException", "logs": "ThrottlingException", "dynamodb": "ThrottlingException",
    "acm": "ThrottlingException", "application-autoscaling": "ThrottlingException", "route53": "Throttling",
    "ssm": "ThrottlingException", "secretsmanager": "ThrottlingException",
    "wafv2": "WAFInternalErrorException", "kms": "ThrottlingException",
    "pricing": "ThrottlingException",
    "s3": "SlowDown",
}
THROTTLE_MESSAGE = {
    "ec2": "Request limit exceeded.",
    "dynamodb": "Rate of requests exceeds the allowed throughput.",
    "s3": "Please reduce your request rate.",
}
ROUTE53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
# HEAD answers carry no body: the status is the error.
STATUS_ONLY_CODE = {301: "PermanentRedirect", 400: "BadRequest", 403: "Forbidden", 404: "NotFound", 412: "PreconditionFailed"}
RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "content-length"}
DDB_TABLE_OPS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"}
DDB_MULTI_OPS = {"BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"}
DDB_CHANGE_OPS = {"UpdateTable", "UpdateTimeToLive", "UpdateContinuousBackups"}
IAM_ROLE_MESSAGE = ("ECS was unable to assume the role '{arn}' that was provided for this task. Please verify that "
                    "the role being passed has the proper trust relationship and permissions and that your IAM user "
                    "has permissions to pass this role.")


def fargate_pair_ok(cpu: int, mem: int) -> bool:
    """The task-level cpu/memory combinations Fargate accepts (MiB)."""
    gib = 1024
    if cpu == 256:
        return mem in (512, 1024, 2048)
    ranges = {512: (1, 4, 1), 1024: (2, 8, 1), 2048: (4, 16, 1), 4096: (8, 30, 1), 8192: (16, 60, 4), 16384: (32, 120, 8)}
    if cpu not in ranges:
        return False
    lo, hi, step = ranges[cpu]
    return mem % gib == 0 and lo * gib <= mem <= hi * gib and (mem // gib - lo) % step == 0


def parse_cpu(value) -> int | None:
    """'256', 256, '1 vCPU', '0.25 vcpu' -> CPU units."""
    if value is None:
        return None
    text = str(value).strip().lower()
    m = re.fullmatch(r"([0-9.]+)\s*(vcpu)?", text)
    if not m:
        return None
    number = float(m.group(1))
    return int(round(number * 1024)) if m.group(2) else int(number)


def parse_memory(value) -> int | None:
    """'512', 512, '2 GB', '2GB' -> MiB."""
    if value is None:
        return None
    text = str(value).strip().lower()
    m = re.fullmatch(r"([0-9.]+)\s*(gb|gib|mb|mib)?", text)
    if not m:
        return None
    number = float(m.group(1))
    return int(round(number * 1024)) if m.group(2) in ("gb", "gib") else int(number)


class Reject(Exception):
    """A request the proxy answers with an AWS error instead of forwarding it."""

    def __init__(self, code: str, message: str, status: int = 400, extra: dict | None = None, headers: list | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.extra, self.headers = code, message, status, extra, headers


class UpstreamError(Exception):
    def __init__(self, status: int, code: str | None, body: bytes):
        super().__init__(f"upstream {status} {code}")
        self.status, self.code, self.body = status, code, body


class Response:
    def __init__(self, status: int, headers: list, body: bytes, injected: bool = False, error: str | None = None):
        self.status, self.headers, self.body, self.injected, self.error = status, headers, body, injected, error

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_header(self, name: str, value: str | None):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))

    def set_json(self, doc):
        self.body = json.dumps(doc).encode()
        if self.header("x-amz-crc32") is not None:
            self.set_header("x-amz-crc32", str(zlib.crc32(self.body) & 0xFFFFFFFF))
        self.injected = True

    def set_xml(self, root, ns):
        self.body = xml_dump(root, ns)
        self.injected = True


# ---------------------------------------------------------------------------------------------
# XML helpers: namespaces are stripped on parse and the default namespace is put back on dump.

def xml_parse(body: bytes):
    root = ET.fromstring(body)
    ns = ""
    if isinstance(root.tag, str) and root.tag.startswith("{"):
        ns = root.tag[1:root.tag.index("}")]
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root, ns


def xml_dump(root, ns: str, declaration: bool = True) -> bytes:
    if ns:
        root.set("xmlns", ns)
    text = ET.tostring(root, encoding="unicode")
    if declaration:
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + text
    return text.encode()


def xt(el, path: str, default=None):
    if el is None:
        return default
    found = el.find(path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def set_child(el, tag: str, text: str):
    child = el.find(tag)
    if child is None:
        child = ET.SubElement(el, tag)
    child.text = text
    return child


def esc(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def indexed(params: dict, prefix: str) -> list:
    """Values of Prefix.N or Prefix.member.N, in N order."""
    pat = re.compile(r"^" + re.escape(prefix) + r"\.(?:member\.)?(\d+)$")
    out = []
    for k, v in params.items():
        m = pat.match(k)
        if m:
            out.append((int(m.group(1)), v))
    return [v for _, v in sorted(out)]


def indexed_groups(params: dict, prefix: str) -> list:
    """Prefix.N.Rest=value pairs grouped by N, in N order: [{Rest: value}] (Filter.1.Name, ...)."""
    pat = re.compile(r"^" + re.escape(prefix) + r"\.(\d+)\.(.+)$")
    groups: dict = {}
    for k, v in params.items():
        m = pat.match(k)
        if m:
            groups.setdefault(int(m.group(1)), {})[m.group(2)] = v
    return [g for _, g in sorted(groups.items())]


def dns_norm(name) -> str:
    """A DNS name as Route 53 compares it: lower case, one trailing dot, \\052 read as *."""
    name = str(name or "").strip().replace("\\052", "*").lower()
    return name if name.endswith(".") else name + "."


def is_mutating(action: str) -> bool:
    """Calls that change something: everything but reads."""
    return not action.startswith(("Describe", "List", "Get", "Head", "Scan", "Query", "BatchGet", "Simulate"))


def error_code_of(status: int, headers: list, body: bytes) -> str | None:
    if status < 400 and status != 301:
        return None
    for k, v in headers:
        if k.lower() == "x-amzn-errortype" and v:
            return v.split(":")[0].split("#")[-1]
    text = body[:4000].decode("utf-8", "replace")
    m = re.search(r"<Code>([^<]+)</Code>", text)
    if m:
        return m.group(1)
    try:
        doc = json.loads(text)
        code = doc.get("__type") or doc.get("code")
        if code:
            return str(code).split("#")[-1]
    except Exception:
        pass
    if not text.strip() and status in STATUS_ONLY_CODE:
        return STATUS_ONLY_CODE[status]
    return f"HTTP{status}"


# ---------------------------------------------------------------------------------------------
# REST operations: the action name from the method, the path and the query.

ROUTE53_ROUTES = [
    # (method, path pattern after /2013-04-01, action)
    ("GET", r"hostedzone", "ListHostedZones"), ("POST", r"hostedzone", "CreateHostedZone"),
    ("GET", r"hostedzone/[^/]+", "GetHostedZone"), ("DELETE", r"hostedzone/[^/]+", "DeleteHostedZone"),
    ("POST", r"hostedzone/[^/]+", "UpdateHostedZoneComment"),
    ("GET", r"hostedzone/[^/]+/rrset", "ListResourceRecordSets"),
    ("POST", r"hostedzone/[^/]+/rrset", "ChangeResourceRecordSets"),
    ("POST", r"hostedzone/[^/]+/associatevpc", "AssociateVPCWithHostedZone"),
    ("POST", r"hostedzone/[^/]+/disassociatevpc", "DisassociateVPCFromHostedZone"),
    ("GET", r"hostedzone/[^/]+/dnssec", "GetDNSSEC"),
    ("POST", r"hostedzone/[^/]+/enable-dnssec", "EnableHostedZoneDNSSEC"),
    ("POST", r"hostedzone/[^/]+/disable-dnssec", "DisableHostedZoneDNSSEC"),
    ("GET", r"hostedzone/[^/]+/authorizevpcassociation", "ListVPCAssociationAuthorizations"),
    ("POST", r"hostedzone/[^/]+/authorizevpcassociation", "CreateVPCAssociationAuthorization"),
    ("POST", r"hostedzone/[^/]+/deauthorizevpcassociation", "DeleteVPCAssociationAuthorization"),
    ("POST", r"hostedzone/[^/]+/features", "UpdateHostedZoneFeatures"),
    ("GET", r"hostedzonesbyname", "ListHostedZonesByName"), ("GET", r"hostedzonesbyvpc", "ListHostedZonesByVPC"),
    ("GET", r"hostedzonecount", "GetHostedZoneCount"), ("GET", r"hostedzonelimit/[^/]+/[^/]+", "GetHostedZoneLimit"),
    ("GET", r"change/[^/]+", "GetChange"),
    ("GET", r"tags/[^/]+/[^/]+", "ListTagsForResource"), ("POST", r"tags/[^/]+/[^/]+", "ChangeTagsForResource"),
    ("POST", r"tags/[^/]+", "ListTagsForResources"),
    ("GET", r"healthcheck", "ListHealthChecks"), ("POST", r"healthcheck", "CreateHealthCheck"),
    ("GET", r"healthcheck/[^/]+", "GetHealthCheck"), ("DELETE", r"healthcheck/[^/]+", "DeleteHealthCheck"),
    ("POST", r"healthcheck/[^/]+", "UpdateHealthCheck"), ("GET", r"healthcheck/[^/]+/status", "GetHealthCheckStatus"),
    ("GET", r"healthcheck/[^/]+/lastfailurereason", "GetHealthCheckLastFailureReason"),
    ("GET", r"healthcheckcount", "GetHealthCheckCount"),
    ("GET", r"delegationset", "ListReusableDelegationSets"), ("POST", r"delegationset", "CreateReusableDelegationSet"),
    ("GET", r"delegationset/[^/]+", "GetReusableDelegationSet"),
    ("DELETE", r"delegationset/[^/]+", "DeleteReusableDelegationSet"),
    ("GET", r"checkeripranges", "GetCheckerIpRanges"), ("GET", r"accountlimit/[^/]+", "GetAccountLimit"),
    ("GET", r"geolocation", "GetGeoLocation"), ("GET", r"geolocations", "ListGeoLocations"),
    ("GET", r"testdnsanswer", "TestDNSAnswer"),
    ("GET", r"queryloggingconfig", "ListQueryLoggingConfigs"), ("POST", r"queryloggingconfig", "CreateQueryLoggingConfig"),
    ("GET", r"queryloggingconfig/[^/]+", "GetQueryLoggingConfig"),
    ("DELETE", r"queryloggingconfig/[^/]+", "DeleteQueryLoggingConfig"),
]


def route53_action(method: str, path: str) -> str:
    rest = re.sub(r"^/\d{4}-\d{2}-\d{2}/", "", urllib.parse.urlsplit(path).path).strip("/")
    for m, pattern, action in ROUTE53_ROUTES:
        if m == method and re.fullmatch(pattern, rest):
            return action
    first = rest.split("/")[0] if rest else "root"
    return method.capitalize() + "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", first) if w)


S3_BUCKET_SUB = {  # sub-resource -> the name that follows Get/Put/Delete
    "versioning": "BucketVersioning", "encryption": "BucketEncryption", "publicAccessBlock": "PublicAccessBlock",
    "policy": "BucketPolicy", "tagging": "BucketTagging", "acl": "BucketAcl", "cors": "BucketCors",
    "lifecycle": "BucketLifecycleConfiguration", "website": "BucketWebsite", "logging": "BucketLogging",
    "notification": "BucketNotificationConfiguration", "ownershipControls": "BucketOwnershipControls",
    "replication": "BucketReplication", "object-lock": "ObjectLockConfiguration",
    "accelerate": "BucketAccelerateConfiguration", "requestPayment": "BucketRequestPayment",
    "policyStatus": "BucketPolicyStatus", "analytics": "BucketAnalyticsConfiguration",
    "metrics": "BucketMetricsConfiguration", "inventory": "BucketInventoryConfiguration",
    "intelligent-tiering": "BucketIntelligentTieringConfiguration",
}
S3_OBJECT_SUB = {"tagging": "ObjectTagging", "acl": "ObjectAcl", "retention": "ObjectRetention",
                 "legal-hold": "ObjectLegalHold"}


def s3_split(path: str):
    """Path-style '/bucket/key' -> (bucket or None, key or None)."""
    raw = urllib.parse.urlsplit(path).path
    parts = raw.lstrip("/").split("/", 1)
    bucket = urllib.parse.unquote(parts[0]) if parts[0] else None
    key = urllib.parse.unquote(parts[1]) if len(parts) > 1 and parts[1] != "" else None
    return bucket, key


def s3_action(method: str, path: str, params: dict, headers) -> str:
    if params.get("x-id"):  # the Rust SDK names most object operations itself
        return params["x-id"]
    bucket, key = s3_split(path)
    copy = any(k.lower() == "x-amz-copy-source" for k, _ in headers)
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}.get(method, method.capitalize())
    if bucket is None:
        return "ListBuckets" if method == "GET" else verb + "Root"
    if key is None:
        if method == "GET" and "location" in params:
            return "GetBucketLocation"
        if method == "GET" and "uploads" in params:
            return "ListMultipartUploads"
        if method == "GET" and "versions" in params:
            return "ListObjectVersions"
        if method == "POST" and "delete" in params:
            return "DeleteObjects"
        for sub, name in S3_BUCKET_SUB.items():
            if sub in params:
                return verb + name
        return {"GET": "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects", "PUT": "CreateBucket",
                "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, verb + "Bucket")
    if "uploadId" in params:
        if method == "PUT":
            return "UploadPartCopy" if copy else "UploadPart"
        return {"POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload", "GET": "ListParts"}.get(method, verb + "Upload")
    if method == "POST" and "uploads" in params:
        return "CreateMultipartUpload"
    if method == "POST" and "restore" in params:
        return "RestoreObject"
    if method == "GET" and "attributes" in params:
        return "GetObjectAttributes"
    for sub, name in S3_OBJECT_SUB.items():
        if sub in params:
            return verb + name
    if method == "PUT":
        return "CopyObject" if copy else "PutObject"
    return verb + "Object"


def error_response(service: str | None, code: str, message: str, status: int = 400, json_ct: str | None = None,
                   extra: dict | None = None, headers: list | None = None) -> Response:
    """An AWS error in the service's own format. `extra` adds elements to the XML error (S3's <Bucket>,
    <Endpoint>, <Condition>, ...); `headers` adds response headers."""
    rid = str(uuid.uuid4())
    proto = PROTOCOL.get(service or "")
    if proto is None:
        proto = "json" if json_ct else "query"
    headers = [("x-amzn-RequestId", rid), ("Date", formatdate(usegmt=True))] + list(headers or [])
    more = "".join(f"<{k}>{esc(v)}</{k}>" for k, v in (extra or {}).items())
    if proto == "s3":
        rid = uuid.uuid4().hex[:16].upper()
        host_id = uuid.uuid4().hex + uuid.uuid4().hex
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>%s<RequestId>%s</RequestId>'
                '<HostId>%s</HostId></Error>' % (esc(code), esc(message), more, rid, host_id))
        headers = [(k, v) for k, v in headers if k != "x-amzn-RequestId"]
        headers += [("x-amz-request-id", rid), ("x-amz-id-2", host_id), ("Content-Type", "application/xml")]
        return Response(status, headers, body.encode(), injected=True, error=code)
    if proto == "rest-xml":
        kind = "Sender" if status < 500 else "Receiver"
        body = ('<?xml version="1.0"?>\n<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message>%s'
                '</Error><RequestId>%s</RequestId></ErrorResponse>' % (ROUTE53_NS, kind, esc(code), esc(message), more, rid))
        headers.append(("Content-Type", "text/xml"))
        return Response(status, headers, body.encode(), injected=True, error=code)
    if proto == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message>'
                '</Error></Errors><RequestID>%s</RequestID></Response>' % (esc(code), esc(message), rid))
        headers.append(("Content-Type", "text/xml;charset=UTF-8"))
    elif proto == "query":
        kind = "Sender" if status < 500 else "Receiver"
        ns = QUERY_NS.get(service or "", "")
        body = ('<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message>%s</Error>'
                '<RequestId>%s</RequestId></ErrorResponse>' % (ns, kind, esc(code), esc(message), more, rid))
        headers.append(("Content-Type", "text/xml"))
    else:
        body = json.dumps({"__type": code, "message": message})
        headers.append(("Content-Type", JSON_CT.get(service or "", json_ct or "application/x-amz-json-1.1")))
        headers.append(("x-amzn-ErrorType", code))
        if service == "dynamodb":
            headers.append(("x-amz-crc32", str(zlib.crc32(body.encode()) & 0xFFFFFFFF)))
    return Response(status, headers, body.encode(), injected=True, error=code)


# ---- action-level IAM ------------------------------------------------------------------------

# S3 operations authorised under another action's name.
S3_IAM = {"HeadBucket": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
          "HeadObject": "s3:GetObject", "CopyObject": "s3:PutObject", "ListBuckets": "s3:ListAllMyBuckets",
          "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock", "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
          "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
          "PutBucketEncryption": "s3:PutEncryptionConfiguration", "GetBucketEncryption": "s3:GetEncryptionConfiguration",
          "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
          "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration", "DeleteObjects": "s3:DeleteObject",
          "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject"}
SIGNING_TO_IAM = {"monitoring": "cloudwatch"}
NEVER_DENIED = {"sts:GetCallerIdentity"}  # AWS: "No permissions are required to perform this operation."
# The tagging action AWS also checks when a create sends tags: (service, request field that holds them).
TAG_ON_CREATE = {
    "ec2": ("ec2:CreateTags", "TagSpecification.1.ResourceType"),
    "elasticloadbalancing": ("elasticloadbalancing:AddTags", "Tags.member.1.Key"),
    "iam": ("iam:TagRole", "Tags.member.1.Key"),
    "ecs": ("ecs:TagResource", "tags"),
    "dynamodb": ("dynamodb:TagResource", "Tags"),
    "logs": ("logs:TagResource", "tags"),
    "acm": ("acm:AddTagsToCertificate", "Tags"),
    "application-autoscaling": ("application-autoscaling:TagResource", "Tags"),
    # PutMetricAlarm: "you must be signed on with both cloudwatch:PutMetricAlarm and cloudwatch:TagResource".
    "monitoring": ("cloudwatch:TagResource", "Tags"),
}


def iam_action(ctx) -> str | None:
    """The IAM action a request is authorised as."""
    if not ctx.action or not ctx.service:
        return None
    if ctx.service == "s3":
        if ctx.action in ("GetObject", "HeadObject") and "versionId" in ctx.params:
            return "s3:GetObjectVersion"
        if ctx.action == "DeleteObject" and "versionId" in ctx.params:
            return "s3:DeleteObjectVersion"
        return S3_IAM.get(ctx.action, "s3:" + ctx.action)
    return f"{SIGNING_TO_IAM.get(ctx.service, ctx.service)}:{ctx.action}"


def implied_actions(ctx, action: str) -> list:
    """What AWS checks with `action` though nothing on the wire names it: the tags sent with a create,
    the roles a task definition hands to ECS. -> [(action, resource or None)]"""
    out = []
    name = action.split(":", 1)[1]
    tagging = TAG_ON_CREATE.get(ctx.service or "")
    if tagging and (name.startswith("Create") or name in ("RegisterTaskDefinition", "RegisterScalableTarget",
                                                             "RequestCertificate", "AllocateAddress",
                                                             "PutMetricAlarm")):
        field = tagging[1]
        if ctx.params.get(field) or ctx.json.get(field):
            out.append((tagging[0], None))
    if action == "ecs:RegisterTaskDefinition":
        for key in ("taskRoleArn", "executionRoleArn"):
            if ctx.json.get(key):
                out.append(("iam:PassRole", ctx.json[key]))
    if action in ("ecs:CreateService", "ecs:UpdateService"):  # the infrastructure role of a blue/green load balancer
        for spec in ctx.json.get("loadBalancers") or []:
            role = (spec.get("advancedConfiguration") or {}).get("roleArn")
            if role:
                out.append(("iam:PassRole", role))
    # AWS WAF: associating or disassociating an ALB also checks elasticloadbalancing:SetWebACL on it;
    # GetWebACLForResource reads the ACL through wafv2:GetWebACL.
    if action in ("wafv2:AssociateWebACL", "wafv2:DisassociateWebACL") and \
            ":elasticloadbalancing:" in str(ctx.json.get("ResourceArn", "")):
        out.append(("elasticloadbalancing:SetWebACL", ctx.json["ResourceArn"]))
    if action == "wafv2:GetWebACLForResource":
        out.append(("wafv2:GetWebACL", None))
    # DynamoDB uses a customer-managed key on the caller's behalf: it creates a grant on it.
    if action in ("dynamodb:CreateTable", "dynamodb:UpdateTable"):
        key = (ctx.json.get("SSESpecification") or {}).get("KMSMasterKeyId")
        if key:
            out.append(("kms:CreateGrant", key))
    if action == "ec2:CreateFlowLogs" and ctx.params.get("DeliverLogsPermissionArn"):
        out.append(("iam:PassRole", ctx.params["DeliverLogsPermissionArn"]))
    return out


class IamPolicy:
    """The Allow and Deny action patterns of one policy file, re-read when the file changes."""

    def __init__(self, path: str):
        self.path, self.mtime, self.allow, self.deny = path, None, [], []

    def refresh(self):
        mtime = os.stat(self.path).st_mtime_ns
        if mtime == self.mtime:
            return
        with open(self.path, encoding="utf-8") as f:
            doc = json.load(f)
        statements = doc.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        allow, deny = [], []
        for st in statements:
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            (deny if st.get("Effect") == "Deny" else allow).extend(a.lower() for a in actions)
        self.allow, self.deny, self.mtime = allow, deny, mtime

    def decision(self, action: str) -> str:
        """AWS's EvalDecision: allowed, explicitDeny or implicitDeny (action names match case-insensitively)."""
        self.refresh()
        a = action.lower()
        if any(fnmatch.fnmatchcase(a, p) for p in self.deny):
            return "explicitDeny"
        return "allowed" if any(fnmatch.fnmatchcase(a, p) for p in self.allow) else "implicitDeny"


def access_denied(ctx, principal: str, action: str, resource: str | None, decision: str) -> Response:
    """AWS's denial of `action` in the request's protocol, naming the action as AWS does."""
    on = f" on resource: {resource}" if resource else ""
    why = {"explicitDeny": "with an explicit deny in an identity-based policy",
           "scpDeny": "with an explicit deny in a service control policy"}.get(
        decision, f"because no identity-based policy allows the {action} action")
    text = f"User: {principal} is not authorized to perform: {action}{on} {why}"
    proto = PROTOCOL.get(ctx.service or "")
    if proto == "ec2":
        message = "You are not authorized to perform this operation. " + text
        if not (ctx.action or "").startswith("Describe"):  # mutating calls carry the encoded context
            message += ". Encoded authorization failure message: " + base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
        return ctx.error("UnauthorizedOperation", message, 403)
    if proto in ("query", "rest-xml"):
        return ctx.error("AccessDenied", text, 403)
    if proto == "s3":
        resp = ctx.error("AccessDenied", text, 403)
        if ctx.method == "HEAD":
            resp.body = b""
        return resp
    if ctx.service == "dynamodb":
        body = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "Message": text}).encode()
        headers = [("x-amzn-RequestId", str(uuid.uuid4())), ("Content-Type", JSON_CT["dynamodb"]),
                   ("x-amzn-ErrorType", "AccessDeniedException"), ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))]
        return Response(400, headers, body, injected=True, error="AccessDeniedException")
    return ctx.error("AccessDeniedException", text, 400)


def caller_identity(ctx, principal: str) -> Response:
    """sts:GetCallerIdentity for a key of `iam_policies`: its principal, as AWS names the key's owner."""
    account = principal.split(":")[4]
    body = ('<GetCallerIdentityResponse xmlns="%s"><GetCallerIdentityResult><Arn>%s</Arn><UserId>AIDACI%s</UserId>'
            '<Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId>'
            '</ResponseMetadata></GetCallerIdentityResponse>' % (QUERY_NS["sts"], esc(principal), account, account,
                                                                 uuid.uuid4()))
    return Response(200, [("Content-Type", "text/xml")], body.encode(), injected=True)


def simulate_principal_policy(ctx, policy: IamPolicy) -> Response:
    """iam:SimulatePrincipalPolicy (moto lacks it), answered from the principal's policy file, by action."""
    actions = [v for k, v in ctx.pairs if re.fullmatch(r"ActionNames\.member\.\d+", k)]
    resources = [v for k, v in ctx.pairs if re.fullmatch(r"ResourceArns\.member\.\d+", k)] or ["*"]
    members = "".join(
        "<member><EvalActionName>%s</EvalActionName><EvalResourceName>%s</EvalResourceName>"
        "<EvalDecision>%s</EvalDecision><MatchedStatements/><MissingContextValues/></member>"
        % (esc(a), esc(r), policy.decision(a)) for a in actions for r in resources)
    body = ('<SimulatePrincipalPolicyResponse xmlns="%s"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>'
            '<EvaluationResults>%s</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>%s'
            '</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>' % (QUERY_NS["iam"], members, uuid.uuid4()))
    return Response(200, [("Content-Type", "text/xml")], body.encode(), injected=True)


class Ctx:
    """One client request, identified."""

    def __init__(self, method: str, path: str, headers: list, body: bytes):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.now = time.time()
        self.cache: dict = {}
        self.extra: dict = {}
        self.service, self.region, self.akid = self._scope()
        self.content_type = self.header("content-type") or ""
        self.pairs: list = []
        self.params: dict = {}
        self.json: dict = {}
        self.action = None
        target = self.header("x-amz-target")
        if self.service is None:
            if target and "." in target:
                prefix = target.split(".", 1)[0]
                for svc, p in JSON_TARGET.items():
                    if p == prefix:
                        self.service = svc
            elif re.match(r"^/\d{4}-\d{2}-\d{2}/", urllib.parse.urlsplit(path).path):
                self.service = "route53"
        self.protocol = PROTOCOL.get(self.service or "")
        query = urllib.parse.urlsplit(path).query
        if self.protocol in ("rest-xml", "s3"):
            # REST: the body is the payload (XML, JSON or object bytes), the query holds parameters.
            self.pairs = urllib.parse.parse_qsl(query, keep_blank_values=True) if query else []
            for k, v in self.pairs:
                self.params.setdefault(k, v)
            if self.protocol == "s3":
                self.bucket, self.key = s3_split(path)
                self.action = s3_action(method, path, self.params, headers)
            else:
                self.action = route53_action(method, path)
        elif target:
            self.action = target.rsplit(".", 1)[-1]
            try:
                doc = json.loads(body.decode("utf-8")) if body.strip() else {}
                self.json = doc if isinstance(doc, dict) else {}
            except Exception:
                self.json = {}
        else:
            text = body.decode("utf-8", "replace") if "json" not in self.content_type else ""
            try:
                self.pairs = urllib.parse.parse_qsl(text, keep_blank_values=True) if text else []
            except Exception:
                self.pairs = []
            if query:
                self.pairs += urllib.parse.parse_qsl(query, keep_blank_values=True)
            self.params = {}
            for k, v in self.pairs:
                self.params.setdefault(k, v)
            self.action = self.params.get("Action")

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def _scope(self):
        auth = self.header("authorization") or ""
        m = re.search(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request", auth)
        if not m:
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            cred = (q.get("X-Amz-Credential") or [""])[0]
            m = re.match(r"([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request", cred)
        if not m:
            return None, "us-east-1", "testing"
        return m.group(4), m.group(3), m.group(1)

    def set_form(self, pairs: list):
        self.pairs = pairs
        self.body = urllib.parse.urlencode(pairs).encode()

    def set_json_body(self, doc: dict):
        self.json = doc
        self.body = json.dumps(doc).encode()

    def set_query(self, pairs: list):
        """Replace a REST request's query string."""
        parts = urllib.parse.urlsplit(self.path)
        self.path = urllib.parse.urlunsplit(("", "", parts.path, urllib.parse.urlencode(pairs), ""))

    def error(self, code: str, message: str, status: int = 400, **kw) -> Response:
        return error_response(self.service, code, message, status,
                              self.content_type if "json" in self.content_type else None, **kw)


# ---------------------------------------------------------------------------------------------

class Realism:
    """The overlay state and the behaviours."""

    def __init__(self, upstream: str, cfg: dict, call_log: str | None, verbose: bool = False):
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = u.hostname or "127.0.0.1", u.port or 80
        self.cfg = cfg
        self.verbose = verbose
        self.lock = threading.RLock()
        self.log_lock = threading.Lock()
        self.log_file = open(call_log, "a", encoding="utf-8") if call_log else None
        self.rng = random.Random(cfg.get("fault_seed", 1))
        self.freeze_lock = threading.Lock()
        self.freeze_after = None
        self.freeze_action = None
        self.frozen_action = None
        self.mutations = 0
        self.thawed = threading.Event()
        self.iam_policies: dict = {}
        self.reset()

    def reset(self):
        with self.lock:
            self.nats: dict = {}
            self.nat_tokens: dict = {}
            # (route table, destination CIDR) -> regional NAT gateway a route points at (moto keeps no target).
            self.regional_routes: dict = {}
            self.lbs: dict = {}
            self.eni_linger: list = []
            self.tables: dict = {}
            self.roles: dict = {}
            self.services: dict = {}
            self.taskdefs: dict = {}
            # Routing gaps (an observation for tests): listener ARN -> the target groups its requests go to now.
            self.routes: dict = {}
            self.gaps: list = []
            self.gaps_open: set = set()
            self.gap_checked = 0.0
            self.last_ctx = None
            self.subnets: dict = {}
            self.ip_next: dict = {}
            self.route_changes: dict = {}
            self.assoc_changes: dict = {}
            self.task_seq = 0
            self.event_seq = 0
            # ACM and listeners
            self.certs: dict = {}
            self.cert_tokens: dict = {}
            self.listener_certs: dict = {}
            self.cert_released: dict = {}
            # Target group ARN -> load balancers a ModifyListener made forward to it (moto records a target
            # group's load balancer only when a listener or rule is created with it).
            self.tg_lbs: dict = {}
            # Route 53
            self.r53_changes: dict = {}
            self.r53_seen: dict = {}
            # Application Auto Scaling
            self.aas_tags: dict = {}
            self.aas_targets: dict = {}
            self.aas_policy_arns: dict = {}
            self.aas_registered_at: dict = {}
            # ECS cluster settings UpdateClusterSettings changed (moto has no such call): ARN -> {name: value}
            self.cluster_settings: dict = {}
            # S3
            self.bucket_regions: dict = {}
            self.bucket_policies: dict = {}
            # KMS keys set after creation (moto has no AssociateKmsKey, and ignores UpdateTable's
            # SSESpecification): log group name -> key ARN or None; table name -> SSEDescription or None
            self.log_group_keys: dict = {}
            self.table_sse: dict = {}
            # CloudWatch alarm states as AWS keeps them (moto: OK at creation, reset by every PutMetricAlarm):
            # (region, name) -> {"StateValue", "StateReason", "StateUpdatedTimestamp"}
            self.alarm_states: dict = {}
            # (region, name) -> [(time, StateValue)]: what ECS's deployment alarm monitoring saw, in order.
            self.alarm_history: dict = {}

    def d(self, key: str) -> float:
        return float(self.cfg[key]) * float(self.cfg["time_scale"])

    # ---- upstream --------------------------------------------------------------------------

    def send_upstream(self, method: str, path: str, headers: list, body: bytes):
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=float(self.cfg["upstream_timeout_s"]))
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            has_host = False
            for k, v in headers:
                if k.lower() in HOP_BY_HOP:
                    continue
                if k.lower() == "host":
                    has_host = True
                conn.putheader(k, v)
            if not has_host:
                conn.putheader("Host", f"{self.up_host}:{self.up_port}")
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Connection", "close")
            conn.endheaders(body if body else None)
            r = conn.getresponse()
            data = r.read()
            # A HEAD answer keeps its Content-Length: it is the size of the object, not of the (empty) body.
            out_headers = [(k, v) for k, v in r.getheaders()
                           if k.lower() not in HOP_BY_HOP or (method == "HEAD" and k.lower() == "content-length")]
            return r.status, out_headers, data
        finally:
            conn.close()

    def _auth(self, ctx: Ctx, service: str, region: str | None = None) -> list:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return [
            ("Host", f"{self.up_host}:{self.up_port}"),
            ("X-Amz-Date", stamp),
            ("Authorization", f"AWS4-HMAC-SHA256 Credential={ctx.akid}/{stamp[:8]}/{region or ctx.region}/{service}/aws4_request, "
                              f"SignedHeaders=content-type;host;x-amz-date, Signature={'0' * 64}"),
        ]

    def query(self, ctx: Ctx, service: str, action: str, params=None, region: str | None = None):
        """An internal awsQuery/ec2Query call to moto; returns the namespace-stripped XML root."""
        pairs = [("Action", action), ("Version", QUERY_VERSION[service])]
        if params:
            pairs += list(params.items()) if isinstance(params, dict) else list(params)
        body = urllib.parse.urlencode(pairs).encode()
        headers = self._auth(ctx, service, region) + [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        status, rh, data = self.send_upstream("POST", "/", headers, body)
        if status >= 300:
            raise UpstreamError(status, error_code_of(status, rh, data), data)
        return xml_parse(data)[0]

    def call_json(self, ctx: Ctx, service: str, action: str, payload: dict, region: str | None = None):
        body = json.dumps(payload).encode()
        headers = self._auth(ctx, service, region) + [("Content-Type", JSON_CT[service]),
                                              ("X-Amz-Target", f"{JSON_TARGET[service]}.{action}")]
        status, rh, data = self.send_upstream("POST", "/", headers, body)
        if status >= 300:
            raise UpstreamError(status, error_code_of(status, rh, data), data)
        return json.loads(data.decode() or "{}")

    def rest(self, ctx: Ctx, service: str, method: str, path: str, body: bytes = b"", region: str | None = None,
             headers: list | None = None):
        """An internal REST call (route53, s3) to moto: (status, headers, body)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        auth = [("Host", f"{self.up_host}:{self.up_port}"), ("X-Amz-Date", stamp),
                ("Authorization", f"AWS4-HMAC-SHA256 Credential={ctx.akid}/{stamp[:8]}/{region or ctx.region}/{service}/"
                                  f"aws4_request, SignedHeaders=host;x-amz-date, Signature={'0' * 64}")]
        if service == "s3":
            auth.append(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))
        if body and not any(k.lower() == "content-type" for k, _ in headers or []):
            auth.append(("Content-Type", "application/xml"))
        return self.send_upstream(method, path, auth + list(headers or []), body)

    def rest_xml(self, ctx: Ctx, service: str, method: str, path: str, body: bytes = b""):
        status, rh, data = self.rest(ctx, service, method, path, body)
        if status >= 300:
            raise UpstreamError(status, error_code_of(status, rh, data), data)
        return xml_parse(data)[0] if data.strip() else None

    def cached(self, ctx: Ctx, key, fn):
        if key not in ctx.cache:
            ctx.cache[key] = fn()
        return ctx.cache[key]

    # ---- call log --------------------------------------------------------------------------

    def log_call(self, service, action, start, end, status, error, injected):
        if not self.log_file:
            return
        line = json.dumps({"service": service, "action": action, "start": start, "end": end, "status": status,
                           "error": error, "injected": bool(injected)})
        with self.log_lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    # ---- request handling ------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: list, body: bytes) -> Response:
        start = time.time()
        if urllib.parse.urlsplit(path).path.startswith("/realism/"):
            return self.control(method, path)
        if urllib.parse.urlsplit(path).path.startswith("/moto-api"):
            with self.lock:
                status, rh, data = self.send_upstream(method, path, headers, body)
                if method == "POST" and urllib.parse.urlsplit(path).path.rstrip("/") == "/moto-api/reset" and status < 300:
                    self.reset()
            resp = Response(status, rh, data)
            self.log_call("moto-api", urllib.parse.urlsplit(path).path, start, time.time(), status,
                          error_code_of(status, rh, data), False)
            return resp
        op = cbor_json.operation(path)
        if op is not None:
            return self.handle_cbor(op, method, headers, body)
        ctx = Ctx(method, path, headers, body)
        # Network and service latency, outside the lock so that concurrent calls overlap.
        latency = float(self.cfg.get("latency_ms", 0)) / 1000
        if latency:
            time.sleep(latency)
        with self.lock:
            ctx.now = time.time()
            resp = self._handle(ctx)
            self.after_request(ctx, resp)
        resp.error = resp.error if resp.injected and resp.error else error_code_of(resp.status, resp.headers, resp.body)
        self.log_call(ctx.service, ctx.action, start, time.time(), resp.status, resp.error, resp.injected)
        if ctx.action and is_mutating(ctx.action) and not ctx.extra.get("denied"):
            self.hold_if_frozen(ctx.action)
        if self.verbose:
            sys.stderr.write(f"{ctx.service} {ctx.action} -> {resp.status} {resp.error or ''}"
                             f"{' (injected)' if resp.injected else ''}\n")
        return resp

    def handle_cbor(self, op: str, method: str, headers: list, body: bytes) -> Response:
        """A Smithy RPC v2 CBOR call (aws-sdk-cloudwatch): handled as its awsJson1_0 twin (every check,
        hook, fault and freeze applies), answered in CBOR."""
        try:
            json_headers, json_body = cbor_json.request_to_json(op, headers, body)
        except (ValueError, TypeError) as e:
            error = json.dumps({"__type": "SerializationException", "message": str(e)}).encode()
            out, data = cbor_json.response_to_cbor(op, 400, [], error)
            return Response(400, out, data, injected=True, error="SerializationException")
        resp = self.handle(method, "/", json_headers, json_body)
        out, data = cbor_json.response_to_cbor(op, resp.status, resp.headers, resp.body)
        return Response(resp.status, out, data, injected=resp.injected, error=resp.error)

    # ---- test control: freeze after the Nth mutating call ------------------------------------

    def control(self, method: str, path: str) -> Response:
        """`POST /realism/freeze?after=N`: the Nth mutating call (counted since start) is executed
        and logged but never answered, like a client killed before it read the response.
        `POST /realism/freeze?action=A`: the same for the next mutating call of action A (counted from
        now; `&nth=K` for its Kth one).
        `GET /realism/frozen` -> {"frozen": action or null}; `POST /realism/thaw` ends it."""
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        if parts.path == "/realism/routing-gaps":
            return self.routing_gaps()
        with self.freeze_lock:
            if parts.path == "/realism/freeze" and method == "POST":
                if "action" in query:
                    self.freeze_after = None
                    self.freeze_action = (query["action"][0], int(query.get("nth", ["1"])[0]))
                else:
                    self.freeze_after = int(query["after"][0])
                    self.freeze_action = None
                self.frozen_action = None
            elif parts.path == "/realism/thaw" and method == "POST":
                self.freeze_after = None
                self.freeze_action = None
                self.frozen_action = None
                self.thawed.set()
                self.thawed = threading.Event()
            body = json.dumps({"frozen": self.frozen_action, "mutations": self.mutations}).encode()
        return Response(200, [("Content-Type", "application/json")], body)

    # ---- routing gaps: requests sent to a target group with no healthy target --------------------

    ROUTING_ACTIONS = {"CreateListener", "ModifyListener", "DeleteListener", "CreateRule", "ModifyRule", "DeleteRule",
                       "SetRulePriorities", "DeleteLoadBalancer"}

    def after_request(self, ctx: Ctx, resp: Response):
        """Keeps the listeners' routing known and checks it for gaps (at most every 50 ms, and after every
        routing change); never changes the answer."""
        try:
            self.last_ctx = ctx
            changed = ctx.service == "elasticloadbalancing" and ctx.action in self.ROUTING_ACTIONS and resp.status < 300
            if changed:
                listeners = set(self.routes)
                if ctx.action == "CreateListener":
                    root, _ = xml_parse(resp.body)
                    listeners |= {e.text for e in root.iter("ListenerArn") if e.text}
                self.routing_refresh(ctx, listeners)
            if changed or time.time() - self.gap_checked >= 0.05:
                self.routing_check(ctx)
        except Exception:
            traceback.print_exc()

    @staticmethod
    def forwarded(action) -> list:
        """The target groups a forward action sends requests to (weight above 0)."""
        if xt(action, "Type") != "forward":
            return []
        groups = [(xt(t, "TargetGroupArn"), int(xt(t, "Weight") or 1))
                  for t in action.findall("./ForwardConfig/TargetGroups/member")]
        if not groups and xt(action, "TargetGroupArn"):
            groups = [(xt(action, "TargetGroupArn"), 1)]
        return sorted({tg for tg, weight in groups if tg and weight > 0})

    def routing_refresh(self, ctx: Ctx, listeners: set):
        """Each listener's routing from moto: the first rule by priority that takes every path (`/*`), else
        its default action. A listener gone is forgotten."""
        for listener in listeners:
            try:
                root = self.query(ctx, "elasticloadbalancing", "DescribeRules", {"ListenerArn": listener})
            except UpstreamError:
                self.routes.pop(listener, None)
                continue
            default, every = [], []
            for m in root.findall("./DescribeRulesResult/Rules/member"):
                action = m.find("./Actions/member")
                groups = self.forwarded(action) if action is not None else []
                if xt(m, "IsDefault") == "true" or xt(m, "Priority") == "default":
                    default = groups
                    continue
                paths = [e.text for c in m.findall("./Conditions/member") for e in c.iter("member") if e.text]
                if "/*" in paths:
                    every.append((int(xt(m, "Priority") or 0), groups))
            self.routes[listener] = min(every)[1] if every else default

    def serving_in(self, ctx: Ctx, tg: str):
        """(the service is supposed to serve from this target group, a task serves in it now). A task that a
        rolling deployment stopped counts as serving until that deployment completes (even once drained): the
        layer stops the old tasks at the UpdateService, where ECS (minimumHealthyPercent 100) keeps them until
        the new ones are healthy."""
        now = ctx.now
        supposed = False
        for rec in self.services.values():
            groups = ({t["arn"] for t in rec["tgs"]} | {t["tg"] for t in rec["tasks"] if t.get("tg")}
                      | {(s.get("advancedConfiguration") or {}).get("alternateTargetGroupArn")
                         for s in rec.get("lb_specs") or []})
            if tg not in groups:
                continue
            if rec.get("bg"):
                self.svc_view(ctx, rec)  # a blue/green deployment moves on with time
            rolling = rec["completed_at"] is None or rec["completed_at"] > now
            for task in rec["tasks"]:
                if not any(spec["arn"] == tg for spec in self.task_specs(rec, task)):
                    continue
                replaced = task.get("rolled") and rolling and task["run_at"] is not None
                if replaced or self.target_state(ctx, rec, task, tg) == "healthy":
                    rec["served"] = True
                    return True, True
            supposed = supposed or (rec["deleted_at"] is None and rec["desired"] > 0 and rec.get("served", False))
        return supposed, False

    def routing_check(self, ctx: Ctx):
        """A gap: a listener sends requests to a target group its service is supposed to serve from (it has
        served before, it is not deleted, desired count above 0) in which no target is healthy."""
        self.gap_checked = time.time()
        for listener, groups in sorted(self.routes.items()):
            for tg in groups:
                supposed, serving = self.serving_in(ctx, tg)
                key = (listener, tg)
                if supposed and not serving:
                    if key not in self.gaps_open:
                        self.gaps_open.add(key)
                        self.gaps.append({"at": ctx.now, "listener": listener, "target_group": tg})
                else:
                    self.gaps_open.discard(key)

    def routing_gaps(self) -> Response:
        """`GET /realism/routing-gaps` -> {"gaps": [{at, listener, target_group}]}: every time a listener began
        sending requests to a target group of a serving service with no healthy target (checked now too)."""
        with self.lock:
            if self.last_ctx is not None:
                self.last_ctx.now = time.time()
                try:
                    self.routing_check(self.last_ctx)
                except Exception:
                    traceback.print_exc()
            body = json.dumps({"gaps": self.gaps}).encode()
        return Response(200, [("Content-Type", "application/json")], body)

    def hold_if_frozen(self, action: str):
        with self.freeze_lock:
            self.mutations += 1
            if self.freeze_action is not None and self.freeze_action[0] == action:
                name, nth = self.freeze_action
                self.freeze_action = (name, nth - 1)
                if nth != 1:
                    return
            elif self.freeze_after is None or self.mutations != self.freeze_after:
                return
            self.frozen_action = action
            thawed = self.thawed
        thawed.wait(3600)

    def iam_gate(self, ctx: Ctx):
        """A denial when the caller's key has a policy that does not allow the call (or what AWS checks
        with it); `iam:SimulatePrincipalPolicy` answered from the policy of the principal asked about.
        None: go on."""
        keys = self.cfg.get("iam_policies") or {}
        rule = keys.get(ctx.akid)
        action = iam_action(ctx)
        if rule is not None and action == "sts:GetCallerIdentity":
            return caller_identity(ctx, rule.get("principal", "arn:aws:iam::123456789012:user/ci"))
        if rule is None or action is None or action in NEVER_DENIED:
            return None
        if ctx.akid not in self.iam_policies:
            self.iam_policies[ctx.akid] = IamPolicy(rule["policy_file"])
        policy = self.iam_policies[ctx.akid]
        principal = rule.get("principal", "arn:aws:iam::123456789012:user/ci")
        for needed, resource in [(action, None)] + implied_actions(ctx, action):
            decision = policy.decision(needed)
            if decision != "allowed":
                return access_denied(ctx, principal, needed, resource, decision)
        if action == "iam:SimulatePrincipalPolicy":
            source = ctx.params.get("PolicySourceArn")
            asked = next((k for k, r in keys.items() if r.get("principal") == source), None)
            if asked is None:
                return ctx.error("NoSuchEntity", f"The user or role {source} cannot be found.", 404)
            if asked not in self.iam_policies:
                self.iam_policies[asked] = IamPolicy(keys[asked]["policy_file"])
            return simulate_principal_policy(ctx, self.iam_policies[asked])
        return None

    def tag_policy_gate(self, ctx: Ctx):
        """`required_request_tags`: a create that does not send each required tag (key and value
        anywhere in its request, whatever the protocol) is denied as an SCP denies it. None: go on."""
        required = self.cfg.get("required_request_tags") or {}
        if not required or ctx.action not in TAGGED_CREATES.get(ctx.service or "", ()):
            return None
        text = urllib.parse.unquote_plus(ctx.body.decode("utf-8", "replace"))
        if all(k in text and v in text for k, v in required.items()):
            return None
        return access_denied(ctx, "arn:aws:iam::123456789012:user/ci", iam_action(ctx), None, "scpDeny")

    def _handle(self, ctx: Ctx) -> Response:
        denied = self.iam_gate(ctx) or self.tag_policy_gate(ctx)
        if denied is not None:
            ctx.extra["denied"] = True  # changed nothing: not a mutation for the freeze machinery
            return denied
        key = HOOK_KEY.get(ctx.service or "", ctx.service or "")
        pre = getattr(self, f"pre_{key}_{ctx.action}", None) if ctx.action else None
        if pre is None and ctx.service == "dynamodb" and ctx.action in DDB_TABLE_OPS | DDB_MULTI_OPS | DDB_CHANGE_OPS:
            pre = self.dynamodb_table_check
        post = getattr(self, f"post_{key}_{ctx.action}", None) if ctx.action else None
        on_error = getattr(self, f"error_{key}_{ctx.action}", None) if ctx.action else None
        synthesized = None
        checks = [self.s3_access_check, self.s3_owner_check, self.s3_region_check] if ctx.service == "s3" else []
        for check in checks + ([pre] if pre else []):
            try:
                synthesized = check(ctx)
            except Reject as r:
                return ctx.error(r.code, r.message, r.status, extra=r.extra, headers=r.headers)
            except UpstreamError:
                pass  # the checking query failed: let moto answer the real request
            except Exception:
                traceback.print_exc()
            if synthesized is not None:
                break
        fault = self.maybe_fault(ctx)
        if fault is not None:
            return fault
        if synthesized is not None:
            if ctx.extra.get("commit"):
                ctx.extra["commit"]()  # a synthesized change takes effect only if no fault came first
            return synthesized
        try:
            status, rh, data = self.send_upstream(ctx.method, ctx.path, ctx.headers, ctx.body)
        except Exception as e:
            return ctx.error("ServiceUnavailable", f"realism proxy: upstream unreachable: {e}", 503)
        resp = Response(status, rh, data)
        hook = post if 200 <= status < 300 else on_error if status >= 300 else None
        if hook:
            try:
                replaced = hook(ctx, resp)
                if isinstance(replaced, Response):
                    resp = replaced
            except Reject as r:
                resp = ctx.error(r.code, r.message, r.status, extra=r.extra, headers=r.headers)
            except Exception:
                traceback.print_exc()
        return resp

    def maybe_fault(self, ctx: Ctx):
        rate = float(self.cfg.get("fault_rate") or 0.0)
        if rate <= 0:
            return None
        services = self.cfg.get("fault_services")
        if services and ctx.service not in services:
            return None
        actions = self.cfg.get("fault_actions")
        if actions and ctx.action not in actions and f"{ctx.service}:{ctx.action}" not in actions:
            return None
        if self.rng.random() >= rate:
            return None
        if self.rng.random() < float(self.cfg["fault_throttle_share"]):
            code = THROTTLE_CODE.get(ctx.service or "", "Throttling")
            status = {"ec2": int(self.cfg["ec2_throttle_status"]), "s3": 503}.get(ctx.service or "", 400)
            msg = THROTTLE_MESSAGE.get(ctx.service or "", "Rate exceeded")
            if ctx.service == "route53" and self.rng.random() < float(self.cfg["route53_prior_request_share"]):
                code, msg = "PriorRequestNotComplete", "The request was rejected because Route 53 was still processing a prior request."
            return ctx.error(code, msg, status)
        if self.rng.random() < 0.5:
            return ctx.error("InternalError", "We encountered an internal error. Please try again.", 500)
        return ctx.error("ServiceUnavailable", "Service is unavailable. Please try again shortly.", 503)

    # =========================================================================================
    # EC2 facts from moto

    def subnet_info(self, ctx: Ctx, sid: str):
        if sid in self.subnets:
            return self.subnets[sid]
        root = self.query(ctx, "ec2", "DescribeSubnets", {"SubnetId.1": sid})
        for item in root.findall("./subnetSet/item"):
            self._remember_subnet(item)
        return self.subnets.get(sid)

    def _remember_subnet(self, item):
        sid = xt(item, "subnetId")
        if sid:
            self.subnets[sid] = {"vpc": xt(item, "vpcId"), "cidr": xt(item, "cidrBlock"), "az": xt(item, "availabilityZone")}

    def igw_attached(self, ctx: Ctx, vpc: str) -> bool:
        root = self.query(ctx, "ec2", "DescribeInternetGateways",
                          {"Filter.1.Name": "attachment.vpc-id", "Filter.1.Value.1": vpc})
        for att in root.findall("./internetGatewaySet/item/attachmentSet/item"):
            if xt(att, "vpcId") == vpc and xt(att, "state", "available") in ("available", "attached", "attaching"):
                return True
        return False

    def moto_nats(self, ctx: Ctx, filters: dict | None = None) -> list:
        params = {}
        for i, (name, value) in enumerate((filters or {}).items(), 1):
            params[f"Filter.{i}.Name"] = name
            params[f"Filter.{i}.Value.1"] = value
        root = self.cached(ctx, ("nats", tuple(sorted(params.items()))),
                           lambda: self.query(ctx, "ec2", "DescribeNatGateways", params))
        out = []
        for item in root.findall("./natGatewaySet/item"):
            nid = xt(item, "natGatewayId")
            state = self.nat_state(self.nats[nid], ctx.now) if nid in self.nats else xt(item, "state")
            out.append({"id": nid, "state": state, "subnet": xt(item, "subnetId"), "vpc": xt(item, "vpcId"),
                        "allocs": [xt(a, "allocationId") for a in item.findall("./natGatewayAddressSet/item")],
                        "type": xt(item, "connectivityType", "public")})
        for nid, nat in self.nats.items():
            if nat.get("regional") and all((name == "vpc-id" and nat["vpc"] == value) for name, value in (filters or {}).items()):
                out.append({"id": nid, "state": self.nat_state(nat, ctx.now), "subnet": None, "vpc": nat["vpc"],
                            "allocs": list(nat["allocs"]), "type": "public"})
        return out

    def moto_lbs(self, ctx: Ctx) -> list:
        def fetch():
            root = self.query(ctx, "elasticloadbalancing", "DescribeLoadBalancers")
            out = []
            for m in root.findall("./DescribeLoadBalancersResult/LoadBalancers/member"):
                out.append({"arn": xt(m, "LoadBalancerArn"), "vpc": xt(m, "VpcId"), "scheme": xt(m, "Scheme", "internet-facing"),
                            "subnets": [xt(z, "SubnetId") for z in m.findall("./AvailabilityZones/member")],
                            "sgs": [s.text for s in m.findall("./SecurityGroups/member") if s.text]})
            return out
        return self.cached(ctx, "lbs", fetch)

    def tg_info(self, ctx: Ctx, arn: str):
        def fetch():
            root = self.query(ctx, "elasticloadbalancing", "DescribeTargetGroups", {"TargetGroupArns.member.1": arn})
            m = root.find("./DescribeTargetGroupsResult/TargetGroups/member")
            if m is None:
                return None
            return {
                "arn": arn,
                "type": xt(m, "TargetType", "instance"),
                "interval": float(xt(m, "HealthCheckIntervalSeconds") or self.cfg["default_health_check_interval_s"]),
                "threshold": int(xt(m, "HealthyThresholdCount") or self.cfg["default_healthy_threshold_count"]),
                "lbs": sorted({e.text for e in m.findall("./LoadBalancerArns/member") if e.text}
                              | self.tg_lbs.get(arn, set())),
                "port": xt(m, "Port"),
                "vpc": xt(m, "VpcId"),
            }
        try:
            return self.cached(ctx, ("tg", arn), fetch)
        except UpstreamError:
            return None

    def dereg_delay(self, ctx: Ctx, arn: str) -> float:
        try:
            root = self.query(ctx, "elasticloadbalancing", "DescribeTargetGroupAttributes", {"TargetGroupArn": arn})
            for m in root.findall("./DescribeTargetGroupAttributesResult/Attributes/member"):
                if xt(m, "Key") == "deregistration_delay.timeout_seconds":
                    return float(xt(m, "Value")) * float(self.cfg["time_scale"])
        except (UpstreamError, ValueError, TypeError):
            pass
        return self.d("default_deregistration_delay_s")

    # =========================================================================================
    # NAT gateways (1, 13, 14, 16)

    def nat_state(self, nat: dict, now: float) -> str:
        if nat["deleted"] is not None:
            return "deleting" if now < nat["deleted"] + self.d("nat_deleting_s") else "deleted"
        if now < nat["created"] + self.d("nat_pending_s"):
            return "pending"
        return "failed" if nat["fail"] else "available"

    def nat_available_at(self, nat: dict):
        if nat["fail"] or nat["deleted"] is not None:
            return None
        return nat["created"] + self.d("nat_pending_s")

    def pre_ec2_CreateNatGateway(self, ctx: Ctx):
        if ctx.params.get("AvailabilityMode", "zonal") == "regional":
            return self.create_regional_nat(ctx)
        ctx.extra["fail"] = False
        token = ctx.params.get("ClientToken")
        if token:
            # AWS answers a repeated ClientToken with the NAT it made (moto fails with Resource.AlreadyAssociated).
            fingerprint = sorted((k, v) for k, v in ctx.params.items() if k not in ("ClientToken", "Version"))
            known = self.nat_tokens.get(token)
            if known and ctx.now - known["at"] < self.d("client_token_window_s"):
                if known["fingerprint"] != fingerprint:
                    raise Reject("IdempotentParameterMismatch",
                                 f"Client token {token} has already been used with different parameters.")
                root = self.query(ctx, "ec2", "DescribeNatGateways", {"NatGatewayId.1": known["nat"]})
                item = root.find("./natGatewaySet/item")
                if item is not None:
                    self._rewrite_nat_item(item, ctx.now)
                    out = ET.Element("CreateNatGatewayResponse")
                    ET.SubElement(out, "requestId").text = str(uuid.uuid4())
                    ET.SubElement(out, "clientToken").text = token
                    item.tag = "natGateway"
                    out.append(item)
                    return Response(200, [("Content-Type", "text/xml;charset=UTF-8")], xml_dump(out, EC2_NS), injected=True)
            ctx.extra["token"] = (token, fingerprint)
        if ctx.params.get("ConnectivityType", "public") == "private":
            return None
        info = self.subnet_info(ctx, ctx.params.get("SubnetId", ""))
        if info and info["vpc"]:
            ctx.extra["vpc"] = info["vpc"]
            ctx.extra["fail"] = not self.igw_attached(ctx, info["vpc"])
        return None

    def post_ec2_CreateNatGateway(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        item = root.find("natGateway")
        nid = xt(item, "natGatewayId")
        if not nid:
            return
        if nid not in self.nats:
            self.nats[nid] = {"created": ctx.now, "fail": ctx.extra.get("fail", False), "deleted": None,
                              "vpc": xt(item, "vpcId") or ctx.extra.get("vpc"), "subnet": xt(item, "subnetId"),
                              "allocs": [xt(a, "allocationId") for a in item.findall("./natGatewayAddressSet/item")],
                              "type": xt(item, "connectivityType", "public")}
        if ctx.extra.get("token"):
            token, fingerprint = ctx.extra["token"]
            self.nat_tokens[token] = {"nat": nid, "fingerprint": fingerprint, "at": ctx.now}
        self._rewrite_nat_item(item, ctx.now)
        resp.set_xml(root, ns)

    def _rewrite_nat_item(self, item, now: float):
        nid = xt(item, "natGatewayId")
        nat = self.nats.get(nid)
        if nat is None:
            return
        state = self.nat_state(nat, now)
        set_child(item, "state", state)
        if state == "failed":
            set_child(item, "failureCode", "Gateway.NotAttached")
            set_child(item, "failureMessage", f"Network {nat['vpc']} has no Internet gateway attached")
        if state == "deleted" and nat["deleted"] is not None:
            set_child(item, "deleteTime", time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                        time.gmtime(nat["deleted"] + self.d("nat_deleting_s"))))

    def pre_ec2_DescribeNatGateways(self, ctx: Ctx):
        """Strip `state` filters (moto only knows its own states) and apply them to the overlay state."""
        filters = {}
        for k, v in ctx.pairs:
            m = re.match(r"^Filter\.(\d+)\.(Name|Value\.\d+)$", k)
            if m:
                filters.setdefault(int(m.group(1)), {"name": None, "values": []})
                if m.group(2) == "Name":
                    filters[int(m.group(1))]["name"] = v
                else:
                    filters[int(m.group(1))]["values"].append(v)
        states = [f["values"] for f in filters.values() if f["name"] == "state"]
        if not states:
            return None
        ctx.extra["states"] = set(v for vals in states for v in vals)
        kept = [f for _, f in sorted(filters.items()) if f["name"] != "state"]
        pairs = [(k, v) for k, v in ctx.pairs if not re.match(r"^Filter\.\d+\.", k)]
        for i, f in enumerate(kept, 1):
            pairs.append((f"Filter.{i}.Name", f["name"]))
            for j, v in enumerate(f["values"], 1):
                pairs.append((f"Filter.{i}.Value.{j}", v))
        ctx.set_form(pairs)
        return None

    def post_ec2_DescribeNatGateways(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        wanted = ctx.extra.get("states")
        nat_set = root.find("natGatewaySet")
        if nat_set is None:
            nat_set = ET.SubElement(root, "natGatewaySet")
        for item in list(nat_set):
            self._rewrite_nat_item(item, ctx.now)
            if wanted is not None and xt(item, "state") not in wanted:
                nat_set.remove(item)
        if not xt(root, "nextToken"):  # moto's last page: the regional gateways follow it
            for nid in self.regional_nats_matching(ctx, wanted):
                nat_set.append(self.regional_nat_item(nid, ctx.now))
        resp.set_xml(root, ns)

    # ---- regional NAT gateways (availability_mode = regional): moto 5.2.5 refuses them
    # (InvalidSubnetID.NotFound 'None'), so the layer keeps them itself, in self.nats with
    # "regional": their create, describe (ids, filters, tags), delete, the routes to them and the
    # checks that name them (DeleteVpc, DetachInternetGateway, ReleaseAddress).

    def create_regional_nat(self, ctx: Ctx):
        p = ctx.params
        vpc = p.get("VpcId")
        if not vpc:
            raise Reject("MissingParameter", "A regional NAT gateway requires the VpcId parameter.")
        if p.get("SubnetId"):
            raise Reject("InvalidParameterCombination", "SubnetId cannot be specified for a regional NAT gateway.")
        if p.get("ConnectivityType", "public") != "public":
            raise Reject("InvalidParameterCombination", "A regional NAT gateway supports public connectivity only.")
        try:
            known_vpc = self.query(ctx, "ec2", "DescribeVpcs", {"VpcId.1": vpc}).find("./vpcSet/item") is not None
        except UpstreamError:
            known_vpc = False
        if not known_vpc:
            raise Reject("InvalidVpcID.NotFound", f"The vpc ID '{vpc}' does not exist")
        token = p.get("ClientToken")
        fingerprint = sorted((k, v) for k, v in p.items() if k not in ("ClientToken", "Version"))
        known = self.nat_tokens.get(token) if token else None
        if known and ctx.now - known["at"] < self.d("client_token_window_s"):
            if known["fingerprint"] != fingerprint:
                raise Reject("IdempotentParameterMismatch", f"Client token {token} has already been used with different parameters.")
            return self.regional_create_response(known["nat"], token, ctx.now)
        addresses = self.regional_addresses(ctx, vpc)
        tags = [(p[k], p.get(k[:-3] + "Value", "")) for k in sorted(p) if re.match(r"^TagSpecification\.\d+\.Tag\.\d+\.Key$", k)]
        nid = "nat-" + uuid.uuid4().hex[:17]
        nat = {"created": ctx.now, "fail": not self.igw_attached(ctx, vpc), "deleted": None, "vpc": vpc, "subnet": None,
               "allocs": [a["alloc"] for a in addresses], "addresses": addresses, "type": "public", "regional": True,
               "manual": bool(indexed_groups(p, "AvailabilityZoneAddress")), "tags": tags}

        def commit():
            self.nats[nid] = nat
            if token:
                self.nat_tokens[token] = {"nat": nid, "fingerprint": fingerprint, "at": ctx.now}
        ctx.extra["commit"] = commit
        return self.regional_create_response(nid, token, ctx.now, nat)

    def regional_addresses(self, ctx: Ctx, vpc: str) -> list:
        """Manual mode: each AvailabilityZoneAddress's Elastic IPs, which must exist and be free.
        Automatic mode: an address AWS allocates in each AZ the VPC has subnets in."""
        out = []
        for group in indexed_groups(ctx.params, "AvailabilityZoneAddress"):
            az = group.get("AvailabilityZone") or group.get("AvailabilityZoneId")
            if not az:
                raise Reject("MissingParameter", "Each AvailabilityZoneAddress needs AvailabilityZone or AvailabilityZoneId.")
            for alloc in [v for k, v in sorted(group.items()) if k.startswith("AllocationId.")]:
                try:
                    item = self.query(ctx, "ec2", "DescribeAddresses", {"AllocationId.1": alloc}).find("./addressesSet/item")
                except UpstreamError:
                    item = None
                if item is None:
                    raise Reject("InvalidAllocationID.NotFound", f"The allocation IDs '{alloc}' do not exist")
                for other in self.nats.values():
                    if alloc in other["allocs"] and self.nat_state(other, ctx.now) not in ("deleted", "failed"):
                        raise Reject("Resource.AlreadyAssociated", f"Elastic IP address [{alloc}] is already associated")
                out.append({"alloc": alloc, "ip": xt(item, "publicIp"), "az": az})
        if out or indexed_groups(ctx.params, "AvailabilityZoneAddress"):
            return out
        root = self.query(ctx, "ec2", "DescribeSubnets", {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc})
        zones = sorted({xt(i, "availabilityZone") for i in root.findall("./subnetSet/item")})
        return [{"alloc": "eipalloc-" + uuid.uuid4().hex[:17], "ip": f"203.0.113.{10 + n}", "az": z} for n, z in enumerate(zones)]

    def regional_create_response(self, nid: str, token, now: float, nat: dict | None = None) -> Response:
        out = ET.Element("CreateNatGatewayResponse")
        ET.SubElement(out, "requestId").text = str(uuid.uuid4())
        if token:
            ET.SubElement(out, "clientToken").text = token
        item = self.regional_nat_item(nid, now, nat)
        item.tag = "natGateway"
        out.append(item)
        return Response(200, [("Content-Type", "text/xml;charset=UTF-8")], xml_dump(out, EC2_NS), injected=True)

    def regional_nat_item(self, nid: str, now: float, nat: dict | None = None):
        nat = nat or self.nats[nid]
        stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))  # noqa: E731
        state = self.nat_state(nat, now)
        item = ET.Element("item")
        for tag, text in [("createTime", stamp(nat["created"])), ("natGatewayId", nid), ("vpcId", nat["vpc"]),
                          ("state", state), ("connectivityType", "public"), ("availabilityMode", "regional"),
                          ("autoProvisionZones", "disabled" if nat["manual"] else "enabled"),
                          ("autoScalingIps", "disabled" if nat["manual"] else "enabled")]:
            ET.SubElement(item, tag).text = text
        addresses = ET.SubElement(item, "natGatewayAddressSet")
        status = {"pending": "associating", "available": "succeeded", "failed": "failed"}.get(state, "disassociating")
        for n, a in enumerate(nat["addresses"]):
            el = ET.SubElement(addresses, "item")
            for tag, text in [("allocationId", a["alloc"]), ("publicIp", a["ip"]), ("availabilityZone", a["az"]),
                              ("isPrimary", "true" if n == 0 else "false"), ("status", status)]:
                if text:
                    ET.SubElement(el, tag).text = text
        tag_set = ET.SubElement(item, "tagSet")
        for k, v in nat["tags"]:
            t = ET.SubElement(tag_set, "item")
            ET.SubElement(t, "key").text = k
            ET.SubElement(t, "value").text = v
        if state == "failed":
            ET.SubElement(item, "failureCode").text = "Gateway.NotAttached"
            ET.SubElement(item, "failureMessage").text = f"Network {nat['vpc']} has no Internet gateway attached"
        if state == "deleted":
            ET.SubElement(item, "deleteTime").text = stamp(nat["deleted"] + self.d("nat_deleting_s"))
        return item

    def regional_nats_matching(self, ctx: Ctx, states) -> list:
        """The regional gateways a DescribeNatGateways asks for: by NatGatewayId.N and by the filters
        nat-gateway-id, vpc-id, subnet-id, state, tag:KEY and tag-key."""
        ids = indexed(ctx.params, "NatGatewayId")
        filters = [(g.get("Name"), [v for k, v in sorted(g.items()) if k.startswith("Value.")])
                   for g in indexed_groups(ctx.params, "Filter")]
        out = []
        for nid, nat in self.nats.items():
            if not nat.get("regional") or (ids and nid not in ids):
                continue
            state = self.nat_state(nat, ctx.now)
            tags = dict(nat["tags"])
            facts = {"nat-gateway-id": [nid], "vpc-id": [nat["vpc"]], "subnet-id": [], "state": [state],
                     "tag-key": list(tags)}
            ok = states is None or state in states
            for name, values in filters:
                have = [tags[name[4:]]] if name and name.startswith("tag:") and name[4:] in tags else facts.get(name, [])
                if name and name.startswith("tag:") and name[4:] not in tags:
                    have = []
                ok = ok and any(fnmatch.fnmatchcase(h, v) for h in have for v in values)
            if ok:
                out.append(nid)
        return out

    def pre_ec2_DeleteNatGateway(self, ctx: Ctx):
        nid = ctx.params.get("NatGatewayId", "")
        nat = self.nats.get(nid)
        if nat is None or not nat.get("regional"):
            return None
        if self.nat_state(nat, ctx.now) == "deleted":
            raise Reject("NatGatewayNotFound", f"The Nat Gateway {nid} was not found")
        if nat["deleted"] is None:
            ctx.extra["commit"] = lambda: nat.__setitem__("deleted", ctx.now)
        out = ET.Element("DeleteNatGatewayResponse")
        ET.SubElement(out, "requestId").text = str(uuid.uuid4())
        ET.SubElement(out, "natGatewayId").text = nid
        return Response(200, [("Content-Type", "text/xml;charset=UTF-8")], xml_dump(out, EC2_NS), injected=True)

    def pre_ec2_CreateRoute(self, ctx: Ctx):
        """A route to a regional gateway: it must be one in the table's VPC and not deleted (moto
        takes any ID and keeps no target; the layer remembers it, see post_ec2_CreateRoute)."""
        nid = ctx.params.get("NatGatewayId", "")
        nat = self.nats.get(nid)
        if nat is None or not nat.get("regional"):
            return None
        if self.nat_state(nat, ctx.now) in ("deleting", "deleted"):
            raise Reject("InvalidNatGatewayID.NotFound", f"The natGateway ID '{nid}' does not exist")
        root = self.query(ctx, "ec2", "DescribeRouteTables", {"RouteTableId.1": ctx.params.get("RouteTableId", "")})
        table_vpc = xt(root, "./routeTableSet/item/vpcId")
        if table_vpc and table_vpc != nat["vpc"]:
            raise Reject("InvalidParameterValue", f"route table {ctx.params.get('RouteTableId')} and network gateway "
                                                  f"{nid} belong to different networks")
        return None

    pre_ec2_ReplaceRoute = pre_ec2_CreateRoute

    def overlay_regional_routes(self, root, now: float) -> bool:
        """Show each route the layer remembers as pointing at its regional gateway (blackhole once
        that gateway is deleting or gone)."""
        changed = False
        for table in root.findall("./routeTableSet/item"):
            rtb = xt(table, "routeTableId")
            for route in table.findall("./routeSet/item"):
                nid = self.regional_routes.get((rtb, xt(route, "destinationCidrBlock")))
                if nid is None:
                    continue
                for stale in ("gatewayId", "natGatewayId"):
                    for el in route.findall(stale):
                        route.remove(el)
                set_child(route, "natGatewayId", nid)
                gone = self.nat_state(self.nats[nid], now) in ("failed", "deleting", "deleted")
                set_child(route, "state", "blackhole" if gone else "active")
                changed = True
        return changed

    def post_ec2_DeleteRoute(self, ctx: Ctx, resp: Response):
        self.regional_routes.pop((ctx.params.get("RouteTableId"), ctx.params.get("DestinationCidrBlock")), None)

    def post_ec2_DeleteNatGateway(self, ctx: Ctx, resp: Response):
        nid = ctx.params.get("NatGatewayId")
        nat = self.nats.get(nid)
        if nat is not None and nat["deleted"] is None:
            nat["deleted"] = ctx.now

    def post_ec2_DescribeRouteTables(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        changed = self.overlay_regional_routes(root, ctx.now)
        for route in root.findall("./routeTableSet/item/routeSet/item"):
            nid = xt(route, "natGatewayId")
            if nid and nid in self.nats and self.nat_state(self.nats[nid], ctx.now) in ("failed", "deleting", "deleted"):
                set_child(route, "state", "blackhole")
                changed = True
        if changed:
            resp.set_xml(root, ns)

    def post_ec2_CreateRoute(self, ctx: Ctx, resp: Response):
        self.route_changes[ctx.params.get("RouteTableId")] = ctx.now
        route = (ctx.params.get("RouteTableId"), ctx.params.get("DestinationCidrBlock"))
        nat = self.nats.get(ctx.params.get("NatGatewayId", ""))
        if nat is not None and nat.get("regional"):
            self.regional_routes[route] = ctx.params["NatGatewayId"]
        else:
            self.regional_routes.pop(route, None)  # replaced by a route to another target

    post_ec2_ReplaceRoute = post_ec2_CreateRoute

    def post_ec2_AssociateRouteTable(self, ctx: Ctx, resp: Response):
        if ctx.params.get("SubnetId"):
            self.assoc_changes[ctx.params["SubnetId"]] = ctx.now

    def post_ec2_ReplaceRouteTableAssociation(self, ctx: Ctx, resp: Response):
        self.route_changes[ctx.params.get("RouteTableId")] = ctx.now

    def post_ec2_CreateSubnet(self, ctx: Ctx, resp: Response):
        root, _ = xml_parse(resp.body)
        item = root.find("subnet")
        if item is not None:
            self._remember_subnet(item)

    def pre_ec2_DetachInternetGateway(self, ctx: Ctx):
        vpc = ctx.params.get("VpcId", "")
        for nat in self.moto_nats(ctx, {"vpc-id": vpc}):
            if nat["vpc"] == vpc and nat["type"] != "private" and nat["state"] != "deleted":
                raise Reject("DependencyViolation", f"Network {vpc} has some mapped public address(es). Please unmap "
                                                    "those public address(es) before detaching the gateway.")
        if self.cfg.get("detach_igw_checks_load_balancers"):
            blocked = any(lb["vpc"] == vpc and lb["scheme"] == "internet-facing" for lb in self.moto_lbs(ctx))
            blocked = blocked or any(e["vpc"] == vpc and e.get("public") for e in self.live_linger(ctx.now))
            if blocked:
                raise Reject("DependencyViolation", f"Network {vpc} has some mapped public address(es). Please unmap "
                                                    "those public address(es) before detaching the gateway.")
        return None

    def pre_ec2_ReleaseAddress(self, ctx: Ctx):
        alloc = ctx.params.get("AllocationId")
        if not alloc:
            return None
        for nat in self.moto_nats(ctx):
            if alloc in nat["allocs"] and nat["state"] != "deleted":
                raise Reject("InvalidIPAddress.InUse", f"The address with allocation id [{alloc}] is in use.")
        for nat in self.nats.values():
            if alloc in nat["allocs"] and self.nat_state(nat, ctx.now) != "deleted":
                raise Reject("InvalidIPAddress.InUse", f"The address with allocation id [{alloc}] is in use.")
        return None

    # =========================================================================================
    # Security groups, subnets, VPCs (11, 13, 15)

    def live_linger(self, now: float) -> list:
        """Everything holding ENIs now: lingering ENIs of deleted LBs, and ECS services' task ENIs."""
        out = [e for e in self.eni_linger if e["until"] > now]
        for rec in self.services.values():
            status = self.svc_status(rec, now)
            if status in ("ACTIVE", "DRAINING") or now < (rec["drain_end"] or 0) + self.d("task_eni_linger_s"):
                out.append({"until": None, "sgs": set(rec["sgs"]), "subnets": set(rec["subnets"]),
                            "vpc": rec.get("vpc"), "public": rec["public_ip"],
                            "why": f"ECS service {rec['name']} ({status.lower()})",
                            "description": f"arn:aws:ecs:us-east-1:123456789012:attachment/{rec['name']}"})
        return out

    ENI_FILTERS = {"description", "group-id", "subnet-id", "vpc-id"}

    def post_ec2_DescribeNetworkInterfaces(self, ctx: Ctx, resp: Response):
        """AWS lists the network interfaces that load balancers and ECS tasks hold (until they are
        released, minutes after their owner is gone); moto has none. Add them, so that a client
        can wait for them to go instead of retrying the deletes they block."""
        if any(k.startswith("NetworkInterfaceId.") for k, _ in ctx.pairs):
            return
        filters: dict = {}
        names: dict = {}
        for k, v in ctx.pairs:
            m = re.match(r"^Filter\.(\d+)\.(Name|Value\.\d+)$", k)
            if m and m.group(2) == "Name":
                names[m.group(1)] = v
            elif m:
                filters.setdefault(m.group(1), []).append(v)
        wanted = {names[i]: set(vals) for i, vals in filters.items() if i in names}
        if any(name not in self.ENI_FILTERS for name in wanted):
            return
        root, ns = xml_parse(resp.body)
        eni_set = root.find("networkInterfaceSet")
        if eni_set is None:
            eni_set = ET.SubElement(root, "networkInterfaceSet")
        for e in self.live_linger(ctx.now):
            for subnet in sorted(e["subnets"]):
                fields = {"description": {e.get("description", "")}, "group-id": set(e["sgs"]),
                          "subnet-id": {subnet}, "vpc-id": {e.get("vpc") or ""}}
                if any(not (fields[name] & values) for name, values in wanted.items()):
                    continue
                item = ET.SubElement(eni_set, "item")
                digest = zlib.crc32(f"{e.get('description')}/{subnet}".encode())
                for tag, text in [("networkInterfaceId", f"eni-{digest:08x}{digest:09x}"[:21]), ("subnetId", subnet),
                                  ("vpcId", e.get("vpc") or ""), ("description", e.get("description", "")),
                                  ("status", "in-use"), ("interfaceType", "interface"), ("requesterManaged", "true")]:
                    set_child(item, tag, text)
                groups = ET.SubElement(item, "groupSet")
                for sg in sorted(e["sgs"]):
                    set_child(ET.SubElement(groups, "item"), "groupId", sg)
        resp.set_xml(root, ns)

    def pre_ec2_DeleteSecurityGroup(self, ctx: Ctx):
        sg = ctx.params.get("GroupId")
        if not sg:
            return None
        message = f"resource {sg} has a dependent object"
        root = self.query(ctx, "ec2", "DescribeSecurityGroups")
        for item in root.findall("./securityGroupInfo/item"):
            if xt(item, "groupId") == sg:
                continue
            for perms in ("ipPermissions", "ipPermissionsEgress"):
                for ref in item.findall(f"./{perms}/item/groups/item"):
                    if xt(ref, "groupId") == sg:
                        raise Reject("DependencyViolation", message)
        for lb in self.moto_lbs(ctx):
            if sg in lb["sgs"]:
                raise Reject("DependencyViolation", message)
        for e in self.live_linger(ctx.now):
            if sg in e["sgs"]:
                raise Reject("DependencyViolation", message)
        return None

    def pre_ec2_CreateSecurityGroup(self, ctx: Ctx):
        vpc, name = ctx.params.get("VpcId"), ctx.params.get("GroupName")
        if not vpc or not name:
            return None
        root = self.query(ctx, "ec2", "DescribeSecurityGroups", {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc,
                                                                 "Filter.2.Name": "group-name", "Filter.2.Value.1": name})
        for item in root.findall("./securityGroupInfo/item"):
            if xt(item, "groupName") == name and xt(item, "vpcId") == vpc:
                raise Reject("InvalidGroup.Duplicate", f"The security group '{name}' already exists for VPC '{vpc}'")
        return None

    def pre_ec2_DeleteSubnet(self, ctx: Ctx):
        sid = ctx.params.get("SubnetId", "")
        message = f"The subnet '{sid}' has dependencies and cannot be deleted."
        for nat in self.moto_nats(ctx, {"subnet-id": sid}):
            if nat["subnet"] == sid and nat["state"] != "deleted":
                raise Reject("DependencyViolation", message)
        for lb in self.moto_lbs(ctx):
            if sid in lb["subnets"]:
                raise Reject("DependencyViolation", message)
        for e in self.live_linger(ctx.now):
            if sid in e["subnets"]:
                raise Reject("DependencyViolation", message)
        return None

    def pre_ec2_DeleteVpc(self, ctx: Ctx):
        vpc = ctx.params.get("VpcId", "")
        message = f"The vpc '{vpc}' has dependencies and cannot be deleted."
        for nat in self.moto_nats(ctx, {"vpc-id": vpc}):
            if nat["vpc"] == vpc and nat["state"] != "deleted":
                raise Reject("DependencyViolation", message)
        if any(lb["vpc"] == vpc for lb in self.moto_lbs(ctx)):
            raise Reject("DependencyViolation", message)
        for e in self.live_linger(ctx.now):
            vpcs = {e.get("vpc")} | {(self.subnets.get(s) or {}).get("vpc") for s in e["subnets"]}
            if vpc in vpcs:
                raise Reject("DependencyViolation", message)
        if self.igw_attached(ctx, vpc):
            raise Reject("DependencyViolation", message)
        if any(e["vpc"] == vpc for e in self.moto_endpoints(ctx)):
            raise Reject("DependencyViolation", message)
        return None

    # =========================================================================================
    # VPC gateway endpoints. AWS refuses to delete a VPC that still has endpoints (moto deletes
    # it); refuses a gateway endpoint on a route table that already routes the service's prefix
    # list (RouteAlreadyExists: a second S3 endpoint on a table; moto makes it); and adds or removes
    # the prefix-list route when ModifyVpcEndpoint adds or removes a route table (moto only
    # changes the endpoint's list). Deleted endpoints stay listed as `deleted`, as AWS lists them
    # for a while.

    def moto_endpoints(self, ctx: Ctx) -> list:
        """Every endpoint moto has that is not deleted."""
        root = self.query(ctx, "ec2", "DescribeVpcEndpoints")
        out = []
        for item in root.findall("./vpcEndpointSet/item"):
            state = (xt(item, "state") or "").lower()
            if state in ("deleted", "deleting"):
                continue
            out.append({"id": xt(item, "vpcEndpointId"), "vpc": xt(item, "vpcId"), "service": xt(item, "serviceName"),
                        "type": (xt(item, "vpcEndpointType") or "gateway").lower(),
                        "tables": [el.text for el in item.findall("./routeTableIdSet/item")]})
        return out

    def prefix_list_of(self, ctx: Ctx, service: str) -> str | None:
        root = self.query(ctx, "ec2", "DescribePrefixLists")
        for item in root.findall("./prefixListSet/item"):
            if xt(item, "prefixListName") == service:
                return xt(item, "prefixListId")
        return None

    def refuse_routed(self, ctx: Ctx, service: str, tables: list, besides: str | None = None):
        for e in self.moto_endpoints(ctx):
            if e["service"] != service or e["type"] != "gateway" or e["id"] == besides:
                continue
            for table in tables:
                if table in e["tables"]:
                    pl = self.prefix_list_of(ctx, service) or service
                    raise Reject("RouteAlreadyExists",
                                 f"route table {table} already has a route with destination-prefix-list-id {pl}")

    def pre_ec2_CreateVpcEndpoint(self, ctx: Ctx):
        if (ctx.params.get("VpcEndpointType") or "Gateway").lower() != "gateway":
            return None
        self.refuse_routed(ctx, ctx.params.get("ServiceName", ""), indexed(ctx.params, "RouteTableId"))
        return None

    def pre_ec2_ModifyVpcEndpoint(self, ctx: Ctx):
        eid = ctx.params.get("VpcEndpointId", "")
        endpoint = next((e for e in self.moto_endpoints(ctx) if e["id"] == eid), None)
        if endpoint is not None and endpoint["type"] == "gateway":
            self.refuse_routed(ctx, endpoint["service"], indexed(ctx.params, "AddRouteTableId"), besides=eid)
        return None

    def post_ec2_DeleteRouteTable(self, ctx: Ctx, resp: Response):
        # AWS deletes a table an endpoint routes (the endpoint's route goes with it) and still
        # deletes that endpoint later; moto's DeleteVpcEndpoints then fails on the table it no
        # longer has (InvalidRouteTableID.NotFound): the endpoint forgets the table here.
        table = ctx.params.get("RouteTableId", "")
        for route in [r for r in self.regional_routes if r[0] == table]:
            del self.regional_routes[route]
        for e in self.moto_endpoints(ctx):
            if table in e["tables"]:
                self.query(ctx, "ec2", "ModifyVpcEndpoint", {"VpcEndpointId": e["id"], "RemoveRouteTableId.1": table})

    def post_ec2_ModifyVpcEndpoint(self, ctx: Ctx, resp: Response):
        eid = ctx.params.get("VpcEndpointId", "")
        endpoint = next((e for e in self.moto_endpoints(ctx) if e["id"] == eid), None)
        if endpoint is None or endpoint["type"] != "gateway":
            return
        pl = self.prefix_list_of(ctx, endpoint["service"])
        if pl is None:
            return
        for table in indexed(ctx.params, "AddRouteTableId"):
            self.query(ctx, "ec2", "CreateRoute", {"RouteTableId": table, "DestinationPrefixListId": pl, "GatewayId": eid})
        for table in indexed(ctx.params, "RemoveRouteTableId"):
            try:
                self.query(ctx, "ec2", "DeleteRoute", {"RouteTableId": table, "DestinationPrefixListId": pl})
            except UpstreamError:
                pass  # a table deleted meanwhile has no route left to remove

    # =========================================================================================
    # Flow logs: AWS answers a delete of flow logs it does not have with HTTP 200 and each one in
    # the call's Unsuccessful list (InvalidFlowLogId.NotFound); moto fails the whole call.

    def pre_ec2_DeleteFlowLogs(self, ctx: Ctx):
        ids = indexed(ctx.params, "FlowLogId")
        if not ids:
            return None
        root = self.query(ctx, "ec2", "DescribeFlowLogs", [(f"FlowLogId.{i + 1}", v) for i, v in enumerate(ids)])
        known = {el.text for el in root.iter("flowLogId")}
        missing = [i for i in ids if i not in known]
        if len(missing) < len(ids):
            return None  # one of ours at a time; a mixed call is left to moto
        items = "".join(
            "<item><error><code>InvalidFlowLogId.NotFound</code><message>%s</message></error>"
            "<resourceId>%s</resourceId></item>" % (esc(f"The flow log ID '{i}' does not exist"), esc(i)) for i in missing)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<DeleteFlowLogsResponse xmlns="http://ec2.amazonaws.com/doc/'
                '2016-11-15/"><requestId>%s</requestId><unsuccessful>%s</unsuccessful></DeleteFlowLogsResponse>'
                % (uuid.uuid4(), items))
        return Response(200, [("Content-Type", "text/xml;charset=UTF-8")], body.encode(), injected=True)

    # =========================================================================================
    # Load balancers (2, 5, 9, 15)

    def lb_active_at(self, arn: str) -> float:
        lb = self.lbs.get(arn)
        return lb["created"] + self.d("alb_provisioning_s") if lb else 0.0

    def pre_elb_CreateLoadBalancer(self, ctx: Ctx):
        if ctx.params.get("Type", "application") != "application":
            return None
        subnets = indexed(ctx.params, "Subnets") + [v for k, v in ctx.params.items()
                                                    if re.match(r"^SubnetMappings\.member\.\d+\.SubnetId$", k)]
        if not subnets:
            return None
        zones = []
        for sid in subnets:
            info = self.subnet_info(ctx, sid)
            if info is None:
                return None  # moto reports the unknown subnet
            zones.append(info["az"])
        if len(set(zones)) < 2:
            raise Reject("ValidationError", "At least two subnets in two different Availability Zones must be specified")
        if len(set(zones)) < len(zones):
            raise Reject("InvalidConfigurationRequest",
                         "A load balancer cannot be attached to multiple subnets in the same Availability Zone")
        return None

    def post_elb_CreateLoadBalancer(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        for m in root.findall("./CreateLoadBalancerResult/LoadBalancers/member"):
            arn = xt(m, "LoadBalancerArn")
            if arn and arn not in self.lbs:
                self.lbs[arn] = {"created": ctx.now}
            self._rewrite_lb(m, ctx.now)
        resp.set_xml(root, ns)

    def _rewrite_lb(self, m, now: float):
        arn = xt(m, "LoadBalancerArn")
        if arn not in self.lbs:
            return
        state = m.find("State")
        if state is None:
            state = ET.SubElement(m, "State")
        set_child(state, "Code", "provisioning" if now < self.lb_active_at(arn) else "active")

    def post_elb_DescribeLoadBalancers(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        for m in root.findall("./DescribeLoadBalancersResult/LoadBalancers/member"):
            self._rewrite_lb(m, ctx.now)
        resp.set_xml(root, ns)

    def pre_elb_DeleteLoadBalancer(self, ctx: Ctx):
        arn = ctx.params.get("LoadBalancerArn")
        for lb in self.moto_lbs(ctx):
            if lb["arn"] == arn:
                ctx.extra["lb"] = lb
        if ctx.extra.get("lb") is not None:
            # moto deletes a load balancer with deletion protection on; AWS refuses.
            root = self.query(ctx, "elasticloadbalancing", "DescribeLoadBalancerAttributes", {"LoadBalancerArn": arn})
            for m in root.findall("./DescribeLoadBalancerAttributesResult/Attributes/member"):
                if xt(m, "Key") == "deletion_protection.enabled" and xt(m, "Value") == "true":
                    raise Reject("OperationNotPermitted", f"Load balancer '{arn}' cannot be deleted because "
                                                          "deletion protection is enabled")
        return None

    def post_elb_DeleteLoadBalancer(self, ctx: Ctx, resp: Response):
        lb = ctx.extra.get("lb")
        if lb:
            self.eni_linger.append({"until": ctx.now + self.d("eni_linger_s"), "sgs": set(lb["sgs"]),
                                    "subnets": set(lb["subnets"]), "vpc": lb["vpc"],
                                    "public": lb["scheme"] == "internet-facing", "why": f"load balancer {lb['arn']}",
                                    "description": "ELB " + lb["arn"].split(":loadbalancer/", 1)[-1]})
        self.lbs.pop(ctx.params.get("LoadBalancerArn"), None)
        try:  # AWS drops a web ACL's association with the load balancer; moto keeps it
            self.call_json(ctx, "wafv2", "DisassociateWebACL", {"ResourceArn": ctx.params.get("LoadBalancerArn")})
        except UpstreamError:
            pass
        for arn, rec in list(self.listener_certs.items()):  # its listeners go with it
            if rec["lb"] == ctx.params.get("LoadBalancerArn"):
                self.release_certs(rec["lb"], rec["certs"], ctx.now)
                del self.listener_certs[arn]

    # ---- AWS WAF ------------------------------------------------------------------------------

    def pre_wafv2_AssociateWebACL(self, ctx: Ctx):
        """AWS checks what moto does not: the web ACL is a REGIONAL one of the call's region, the load
        balancer exists and is no longer provisioning; and an ALB takes one web ACL, the new one replacing
        the old (moto would list the load balancer under both)."""
        acl, resource = str(ctx.json.get("WebACLArn", "")), str(ctx.json.get("ResourceArn", ""))
        parts = acl.split(":", 5)
        if len(parts) < 6 or parts[2] != "wafv2" or not parts[5].startswith("regional/webacl/"):
            raise Reject("WAFInvalidParameterException", "Error reason: The ARN isn't valid. A valid ARN begins with "
                         "arn: and includes other information separated by colons or slashes., field: RESOURCE_ARN, "
                         f"parameter: {acl}")
        if parts[3] != ctx.region:
            raise Reject("WAFNonexistentItemException", "AWS WAF couldn’t perform the operation because your "
                         "resource doesn’t exist.")
        if ":elasticloadbalancing:" in resource:
            if not any(lb["arn"] == resource for lb in self.moto_lbs(ctx)):
                raise Reject("WAFNonexistentItemException", "AWS WAF couldn’t perform the operation because your "
                             "resource doesn’t exist.")
            if ctx.now < self.lb_active_at(resource):
                raise Reject("WAFUnavailableEntityException", "AWS WAF couldn’t retrieve the resource that you "
                             "requested. Retry your request.")
            current = self.call_json(ctx, "wafv2", "GetWebACLForResource", {"ResourceArn": resource}).get("WebACL")
            if current and current.get("ARN") != acl:
                self.call_json(ctx, "wafv2", "GetWebACL", {"ARN": acl})  # an unknown ACL leaves the old one
                self.call_json(ctx, "wafv2", "DisassociateWebACL", {"ResourceArn": resource})
        return None

    # ELB's account per region for access logs (Regions available before August 2022); every later Region uses
    # the log delivery service principal.
    ELB_LOG_ACCOUNTS = {
        "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
        "us-west-2": "797873946194", "af-south-1": "098369216593", "ap-east-1": "754344448648",
        "ap-southeast-3": "589379963580", "ap-south-1": "718504428378", "ap-northeast-3": "383597477331",
        "ap-northeast-2": "600734575887", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
        "ap-northeast-1": "582318560864", "ca-central-1": "985666609251", "eu-central-1": "054676820928",
        "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-south-1": "635631232127",
        "eu-west-3": "009996457667", "eu-north-1": "897822967062", "me-south-1": "076674570225",
        "sa-east-1": "507241528517", "us-gov-west-1": "048591011584", "us-gov-east-1": "190560391635",
    }

    def elb_may_write(self, ctx: Ctx, bucket: str, prefix: str, account: str) -> bool:
        """Whether the bucket's policy lets ELB put a log object: an unconditioned Allow of s3:PutObject to the
        region's ELB account (or the log delivery service) covering <prefix>/AWSLogs/<account>/..."""
        doc = self.bucket_policies.get(bucket)
        if doc is None:
            status, _, data = self.rest(ctx, "s3", "GET", f"/{urllib.parse.quote(bucket)}?policy",
                                        region=self.bucket_regions.get(bucket))
            if status >= 300:
                return False
            doc = data
        try:
            statements = json.loads(doc).get("Statement") or []
        except (ValueError, AttributeError):
            return False
        statements = statements if isinstance(statements, list) else [statements]
        key = (prefix + "/" if prefix else "") + f"AWSLogs/{account}/elasticloadbalancing/x.log.gz"
        obj = f"arn:aws:s3:::{bucket}/{key}"
        elb = self.ELB_LOG_ACCOUNTS.get(ctx.region)
        wanted = {f"arn:aws:iam::{elb}:root", elb} if elb else {"logdelivery.elasticloadbalancing.amazonaws.com"}

        def many(v):
            return [v] if isinstance(v, str) else list(v or [])

        def covers(st):
            principal = st.get("Principal")
            who = principal == "*" or (isinstance(principal, dict) and any(
                p in wanted or p == "*" for p in many(principal.get("AWS" if elb else "Service"))))
            does = any(fnmatch.fnmatchcase("s3:putobject", a.lower()) for a in many(st.get("Action")))
            on = any(fnmatch.fnmatchcase(obj, r) for r in many(st.get("Resource")))
            return who and does and on

        plain = [st for st in statements if isinstance(st, dict) and not st.get("Condition")]
        return any(st.get("Effect") == "Allow" and covers(st) for st in plain) and \
            not any(st.get("Effect") == "Deny" and covers(st) for st in plain)

    def pre_elb_ModifyLoadBalancerAttributes(self, ctx: Ctx):
        """Turning access logs on: AWS writes a test object to the bucket as ELB and refuses the change when it
        cannot (InvalidConfigurationRequest "Access Denied for bucket"); moto takes any bucket name."""
        attrs = {}
        for i in range(1, 50):
            k = ctx.params.get(f"Attributes.member.{i}.Key")
            if k is None:
                break
            attrs[k] = ctx.params.get(f"Attributes.member.{i}.Value", "")
        idle = attrs.get("idle_timeout.timeout_seconds")
        if idle is not None and not (idle.isdigit() and 1 <= int(idle) <= 4000):
            raise Reject("InvalidConfigurationRequest",
                         f"Idle timeout value must be between 1 and 4000 seconds: '{idle}'")
        if attrs.get("access_logs.s3.enabled") != "true":
            return None
        arn = ctx.params.get("LoadBalancerArn")
        if "access_logs.s3.bucket" not in attrs or "access_logs.s3.prefix" not in attrs:
            root = self.query(ctx, "elasticloadbalancing", "DescribeLoadBalancerAttributes", {"LoadBalancerArn": arn})
            for m in root.findall("./DescribeLoadBalancerAttributesResult/Attributes/member"):
                attrs.setdefault(xt(m, "Key"), xt(m, "Value") or "")
        bucket, prefix = attrs.get("access_logs.s3.bucket") or "", attrs.get("access_logs.s3.prefix") or ""
        if not bucket:
            raise Reject("ValidationError", "The value of 'access_logs.s3.bucket' cannot be empty when access logs "
                                            "are enabled")
        region = self.bucket_region(ctx, bucket)
        if region is None:
            raise Reject("InvalidConfigurationRequest", f"The specified bucket does not exist: {bucket}")
        if region != ctx.region:
            raise Reject("InvalidConfigurationRequest", f"The bucket {bucket} is not in the load balancer's region")
        account = arn.split(":")[4] if arn and arn.count(":") >= 5 else "123456789012"
        if not self.elb_may_write(ctx, bucket, prefix, account):
            raise Reject("InvalidConfigurationRequest",
                         f"Access Denied for bucket: {bucket}. Please check S3bucket permission")
        return None

    @staticmethod
    def check_matcher(ctx: Ctx):
        """An HTTP target group's success codes are 200 to 499 (moto takes "600" or "200,,300")."""
        code = ctx.params.get("Matcher.HttpCode")
        if code is None:
            return None
        parts = code.split("-") if "-" in code else code.split(",")
        ok = all(p.isdigit() and len(p) == 3 and 200 <= int(p) <= 499 for p in parts)
        if ok and "-" in code:
            ok = len(parts) == 2 and int(parts[0]) < int(parts[1])
        if not ok:
            raise Reject("ValidationError", f"Health check matcher HTTP code '{code}' must be within '200-499' "
                                            "inclusive")
        return None

    def pre_elb_CreateTargetGroup(self, ctx: Ctx):
        return self.check_matcher(ctx)

    def pre_elb_ModifyTargetGroup(self, ctx: Ctx):
        return self.check_matcher(ctx)

    @staticmethod
    def _actions_key(pairs):
        return sorted((t or "", tuple(sorted(x for x in tgs if x))) for t, tgs in pairs)

    def pre_elb_CreateListener(self, ctx: Ctx):
        arn, port = ctx.params.get("LoadBalancerArn"), ctx.params.get("Port")
        protocol, certs = ctx.params.get("Protocol"), self.request_certs(ctx)
        if protocol in ("HTTPS", "TLS") and not certs:
            raise Reject("ValidationError", f"A certificate must be specified for {protocol} listeners")
        self.check_listener_certs(ctx, certs)
        if not arn or not port:
            return None
        root = self.query(ctx, "elasticloadbalancing", "DescribeListeners", {"LoadBalancerArn": arn})
        wanted = []
        n = 1
        while f"DefaultActions.member.{n}.Type" in ctx.params:
            p = f"DefaultActions.member.{n}."
            tgs = [ctx.params.get(p + "TargetGroupArn")] + [v for k, v in ctx.params.items() if re.match(
                "^" + re.escape(p) + r"ForwardConfig\.TargetGroups\.member\.\d+\.TargetGroupArn$", k)]
            wanted.append((ctx.params[p + "Type"], tgs))
            n += 1
        for m in root.findall("./DescribeListenersResult/Listeners/member"):
            if xt(m, "Port") != str(port):
                continue
            have = []
            for a in m.findall("./DefaultActions/member"):
                tgs = [xt(a, "TargetGroupArn")] + [xt(t, "TargetGroupArn") for t in a.findall("./ForwardConfig/TargetGroups/member")]
                have.append((xt(a, "Type"), tgs))
            have_certs = sorted(xt(c, "CertificateArn") or "" for c in m.findall("./Certificates/member"))
            same = (xt(m, "Protocol") == ctx.params.get("Protocol", xt(m, "Protocol"))
                    and self._actions_key(have) == self._actions_key(wanted) and have_certs == sorted(certs))
            if not same:
                raise Reject("DuplicateListener", f"A listener already exists on this port for this load balancer '{arn}'")
            # Identical settings: CreateListener is idempotent on AWS and returns the existing listener.
            ns = QUERY_NS["elasticloadbalancing"]
            out = ET.Element("CreateListenerResponse")
            result = ET.SubElement(out, "CreateListenerResult")
            listeners = ET.SubElement(result, "Listeners")
            listeners.append(m)
            meta = ET.SubElement(out, "ResponseMetadata")
            ET.SubElement(meta, "RequestId").text = str(uuid.uuid4())
            return Response(200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                            xml_dump(out, ns, declaration=False), injected=True)
        return None

    def post_elb_DescribeTargetHealth(self, ctx: Ctx, resp: Response):
        tg = ctx.params.get("TargetGroupArn")
        entries = []
        for rec in self.services.values():
            if rec.get("bg"):
                self.svc_view(ctx, rec)  # a blue/green deployment moves on with time: its stage now
            for task in rec["tasks"]:
                for lbspec in self.task_specs(rec, task):
                    if lbspec["arn"] != tg:
                        continue
                    state = self.target_state(ctx, rec, task, tg)
                    if state:
                        entries.append((task, lbspec, state))
        if not entries:
            return
        only = {v for k, v in ctx.params.items() if re.match(r"^Targets\.member\.\d+\.Id$", k)}
        root, ns = xml_parse(resp.body)
        result = root.find("DescribeTargetHealthResult")
        if result is None:
            return
        descs = result.find("TargetHealthDescriptions")
        if descs is None:
            descs = ET.SubElement(result, "TargetHealthDescriptions")
        reasons = {
            "initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
            "draining": ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
            "unused": ("Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"),
            "unhealthy": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [502]"),
        }
        for task, lbspec, state in entries:
            if only and task["ip"] not in only:
                continue
            m = ET.SubElement(descs, "member")
            target = ET.SubElement(m, "Target")
            ET.SubElement(target, "Id").text = task["ip"]
            ET.SubElement(target, "Port").text = str(lbspec["port"])
            ET.SubElement(target, "AvailabilityZone").text = task["az"] or ""
            ET.SubElement(m, "HealthCheckPort").text = str(lbspec["port"])
            health = ET.SubElement(m, "TargetHealth")
            ET.SubElement(health, "State").text = state
            if state in reasons:
                ET.SubElement(health, "Reason").text = reasons[state][0]
                ET.SubElement(health, "Description").text = reasons[state][1]
        resp.set_xml(root, ns)

    # =========================================================================================
    # ECS (4, 6, 7, 8, 10, 17)

    def svc_status(self, rec: dict, now: float) -> str:
        if rec["deleted_at"] is None:
            return "ACTIVE"
        return "DRAINING" if now < rec["drain_end"] else "INACTIVE"

    @staticmethod
    def task_running(task: dict, now: float) -> bool:
        return (task["run_at"] is not None and task["run_at"] <= now
                and (task["gone_at"] is None or task["gone_at"] > now))

    def subnet_ready_at(self, ctx: Ctx, sid: str, public_ip: bool):
        """When a task in this subnet can pull its image: its route table has 0.0.0.0/0 to an available NAT
        (or to an internet gateway when the task gets a public IP). None: not (yet) possible."""
        def compute():
            info = self.subnet_info(ctx, sid)
            if not info:
                return None
            root = self.cached(ctx, ("rtbs", info["vpc"]), lambda: self.query(
                ctx, "ec2", "DescribeRouteTables", {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": info["vpc"]}))
            self.overlay_regional_routes(root, ctx.now)
            tables = root.findall("./routeTableSet/item")
            chosen = None
            for t in tables:
                if any(xt(a, "subnetId") == sid for a in t.findall("./associationSet/item")):
                    chosen = t
            if chosen is None:
                for t in tables:
                    if any(xt(a, "main") == "true" for a in t.findall("./associationSet/item")):
                        chosen = t
            if chosen is None:
                return None
            rtb = xt(chosen, "routeTableId")
            for r in chosen.findall("./routeSet/item"):
                if xt(r, "destinationCidrBlock") != "0.0.0.0/0":
                    continue
                base = max(self.route_changes.get(rtb, 0.0), self.assoc_changes.get(sid, 0.0))
                nid = xt(r, "natGatewayId")
                if nid:
                    nat = self.nats.get(nid)
                    if nat is None:
                        return base if xt(r, "state", "active") == "active" else None
                    avail = self.nat_available_at(nat)
                    return None if avail is None else max(avail, base)
                gw = xt(r, "gatewayId") or ""
                if gw.startswith("igw-") and public_ip:
                    return base
            return None
        return self.cached(ctx, ("ready", sid, public_ip), compute)

    def new_task(self, ctx: Ctx, rec: dict, now: float) -> dict:
        self.task_seq += 1
        sid = rec["subnets"][rec["rr"] % len(rec["subnets"])] if rec["subnets"] else None
        rec["rr"] += 1
        ip, az = f"10.255.{(self.task_seq // 250) % 250}.{self.task_seq % 250 + 4}", None
        try:
            info = self.subnet_info(ctx, sid) if sid else None
        except UpstreamError:
            info = None
        if info and info.get("cidr"):
            net = ipaddress.ip_network(info["cidr"], strict=False)
            n = self.ip_next.get(sid, 10)
            if n >= net.num_addresses - 1:
                n = 10
            self.ip_next[sid] = n + 1
            ip, az = str(net.network_address + n), info["az"]
        return {"id": uuid.uuid4().hex, "subnet": sid, "ip": ip, "az": az, "requested": now,
                "provider": self.place_provider(rec),
                "run_at": None, "stop_at": None, "gone_at": None, "fail_at": None,
                "taskdef": rec["taskdef"], "deployment": rec["dep_id"], "revision": rec.get("revision"),
                "tg": rec.get("task_tg"), "stop_reason": None, "stop_code": None, "noted": set()}

    def start_tasks(self, ctx: Ctx, rec: dict, count: int, at: float) -> list:
        tasks = []
        for _ in range(count):  # one by one: where a task goes depends on where the others went
            tasks.append(self.new_task(ctx, rec, at))
            rec["tasks"].append(tasks[-1])
        if tasks:
            ids = " ".join(f"(task {t['id']})" for t in tasks)
            self.event(rec, at, f"(service {rec['name']}) has started {len(tasks)} tasks: {ids}.")
        return tasks

    def stop_task(self, ctx: Ctx, rec: dict, task: dict, now: float, reason: str | None = None,
                  code: str = "ServiceSchedulerInitiated"):
        was_running = self.task_running(task, now)
        task["stop_at"] = now
        task["stop_reason"] = reason or f"Scaling activity initiated by (deployment {rec['dep_id']})"
        task["stop_code"] = code
        if was_running and rec["tgs"]:
            task["gone_at"] = now + max(self.dereg_delay(ctx, t["arn"]) for t in self.task_specs(rec, task))
        else:
            task["gone_at"] = now
            if task["run_at"] is not None and task["run_at"] > now:
                task["run_at"] = None
        return was_running

    def stop_tasks(self, ctx: Ctx, rec: dict, tasks: list, now: float, reason: str | None = None):
        """Stop these tasks; ECS tells of the running ones in one event."""
        stopped = [t for t in tasks if t["stop_at"] is None and self.stop_task(ctx, rec, t, now, reason)]
        if stopped:
            ids = " ".join(f"(task {t['id']})" for t in stopped)
            self.event(rec, now, f"(service {rec['name']}) has stopped {len(stopped)} running tasks: {ids}.")

    def event(self, rec: dict, at: float, message: str):
        """A service event, as DescribeServices shows them (newest first, at most 100)."""
        self.event_seq += 1
        rec["events"].append({"id": str(uuid.uuid4()), "createdAt": at, "message": message, "seq": self.event_seq})

    def new_deployment(self, rec: dict, now: float, taskdef: str):
        """A new deployment becomes PRIMARY; the old one stays ACTIVE while its tasks drain."""
        rec["old_deps"].append({"id": rec["dep_id"], "taskdef": rec["taskdef"], "created": rec["dep_created"]})
        rec["dep_id"] = f"ecs-svc/{random.randrange(10 ** 18, 10 ** 19)}"
        rec["dep_created"] = now
        rec["dep_failed"] = 0
        rec["taskdef"] = taskdef
        rec["completed_at"] = None
        rec["deploy_started"] = now

    def assign_run(self, ctx: Ctx, rec: dict):
        for task in rec["tasks"]:
            if task["run_at"] is None and task["fail_at"] is None and task["stop_at"] is None and task["subnet"]:
                try:
                    ready = self.subnet_ready_at(ctx, task["subnet"], rec["public_ip"])
                except UpstreamError:
                    ready = None
                if ready is not None:
                    at = max(task["requested"], ready) + self.d("task_start_s")
                    if self.image_unpullable(ctx, task["taskdef"]):
                        task["fail_at"] = at
                    else:
                        task["run_at"] = at

    def reconcile(self, ctx: Ctx, rec: dict, now: float):
        self.assign_run(ctx, rec)
        # During a blue/green deployment the old revision's tasks run beside the new ones: not counted.
        live = [t for t in rec["tasks"] if t["stop_at"] is None and (not rec.get("bg") or t["deployment"] == rec["dep_id"])]
        if len(live) < rec["desired"]:
            live += self.start_tasks(ctx, rec, rec["desired"] - len(live), now)
        extra = len(live) - rec["desired"]
        if extra > 0:
            order = sorted(live, key=lambda t: (self.task_running(t, now), -t["requested"]))
            self.stop_tasks(ctx, rec, order[:extra], now)
        self.assign_run(ctx, rec)
        # forget tasks long gone (ECS shows stopped tasks for about an hour)
        rec["tasks"] = [t for t in rec["tasks"] if t["gone_at"] is None or t["gone_at"] > now - 3600]

    def image_has(self, ctx: Ctx, taskdef: str | None, marker_key: str) -> bool:
        marker = self.cfg.get(marker_key)
        if not marker or not taskdef:
            return False
        try:
            td = self.resolve_taskdef(ctx, taskdef)
        except UpstreamError:
            return False
        return any(marker in (c.get("image") or "") for c in td.get("containerDefinitions") or [])

    def image_fails(self, ctx: Ctx, taskdef: str | None) -> bool:
        """Tasks of an image whose name has the marker start but never pass a health check."""
        return self.image_has(ctx, taskdef, "failing_image_marker")

    def image_unpullable(self, ctx: Ctx, taskdef: str | None) -> bool:
        """Tasks of an image whose name has this marker never start: the pull finds no such image."""
        return self.image_has(ctx, taskdef, "unpullable_image_marker")

    @staticmethod
    def image_ref(td: dict) -> str:
        image = next((c.get("image") or "" for c in td.get("containerDefinitions") or []), "")
        first = image.split("/", 1)[0]
        if "/" not in image:
            return f"docker.io/library/{image}"
        if "." not in first and ":" not in first and first != "localhost":
            return f"docker.io/{image}"
        return image

    def fail_tasks(self, ctx: Ctx, rec: dict, now: float):
        """Tasks whose image cannot be pulled stop when the pull gives up; ECS starts others, and the
        circuit breaker trips once enough of the deployment's tasks failed."""
        for _ in range(1000):
            due = sorted((t for t in rec["tasks"] if t["fail_at"] is not None and t["stop_at"] is None
                          and t["fail_at"] <= now), key=lambda t: t["fail_at"])
            if not due:
                return
            for task in due:
                at = task["fail_at"]
                try:
                    ref = self.image_ref(self.resolve_taskdef(ctx, task["taskdef"]))
                except UpstreamError:
                    ref = "the image"
                self.stop_task(ctx, rec, task, at, code="TaskFailedToStart",
                               reason=(f"CannotPullContainerError: pull image manifest has been retried 7 time(s): "
                                       f"failed to resolve ref {ref}: {ref}: not found"))
                if task["deployment"] != rec["dep_id"]:
                    continue
                rec["dep_failed"] += 1
                threshold = max(int(self.cfg["circuit_breaker_min_failed_tasks"]), (rec["desired"] + 1) // 2)
                if rec["dep_failed"] >= threshold and rec["completed_at"] is None and not rec.get("rollout_failed"):
                    self.trip(ctx, rec, at, "tasks failed to start")
                    break
                if self.svc_status(rec, at) == "ACTIVE":
                    self.start_tasks(ctx, rec, 1, at)
            self.assign_run(ctx, rec)

    def circuit_breaker(self, ctx: Ctx, rec: dict, now: float):
        """The deployment circuit breaker: a deployment whose tasks keep failing health checks is
        rolled back to the last completed task definition (AWS counts failed tasks; here, after the
        tasks had twice the time to turn healthy)."""
        if rec["completed_at"] is not None or rec.get("rollout_failed") or not self.image_fails(ctx, rec["taskdef"]):
            return
        tg = rec["tgs"][0]["arn"] if rec["tgs"] else None
        info = self.tg_info(ctx, tg) if tg else None
        checks = (info["interval"] * info["threshold"] if info else 30) * float(self.cfg["time_scale"])
        at = rec["deploy_started"] + self.d("task_start_s") + 2 * checks
        if now < at:
            return
        # It happened then, whenever it is seen.
        self.trip(ctx, rec, at, "tasks failed ELB health checks")

    def trip(self, ctx: Ctx, rec: dict, now: float, why: str, alarms: list | None = None):
        """The deployment failed (circuit breaker, or `alarms` in ALARM): roll back to the last completed
        revision, or (nothing completed yet) just fail."""
        if rec.get("bg"):
            return self.bg_rollback(ctx, rec, now, why, alarms)
        failed, failed_dep = rec["taskdef"], rec["dep_id"]
        sd = self.current_sd(rec)
        self.event(rec, now, f"(service {rec['name']}) (deployment {failed_dep}) deployment failed: {why}.")
        detector = f"alarm(s) {', '.join(alarms)} in ALARM" if alarms else why
        if not rec["previous_taskdef"]:  # nothing to roll back to: the deployment just fails
            rec["rollout_failed"] = True
            rec["rollback_reason"] = f"{detector} ({failed}); deployment failed"
            if sd is not None:
                sd.update(status="STOPPED", stopped=now, reason=self.sd_reason(why, alarms, rolled_back=False),
                          triggered=alarms or [], cb_tripped=not alarms and not why.startswith("stopped"))
            return
        breaker = "the CloudWatch alarms" if alarms else "the deployment circuit breaker"
        rec["rollback_reason"] = f"{detector}; {breaker} rolled back from {failed} to {rec['previous_taskdef']}"
        tg = rec["tgs"][0]["arn"] if rec["tgs"] else None
        reason = f"Task failed ELB health checks in (target-group {tg})" if "health" in why and tg else None
        self.stop_tasks(ctx, rec, [t for t in rec["tasks"] if t["stop_at"] is None], now, reason)
        self.new_deployment(rec, now, rec["previous_taskdef"])
        rec["old_deps"][-1].update(rollout="FAILED", reason=rec["rollback_reason"])
        rec["previous_taskdef"] = None
        rec["task_tg"] = None
        if sd is not None:
            rec["revision"] = rec.get("previous_revision") or next(iter(sd["sources"]), rec.get("revision"))
            sd.update(status="ROLLBACK_IN_PROGRESS", reason=self.sd_reason(why, alarms, rolled_back=True),
                      rollback={"reason": self.sd_reason(why, alarms, rolled_back=True), "startedAt": now,
                                "serviceRevisionArn": rec["revision"]},
                      rollback_dep=rec["dep_id"], triggered=alarms or [], cb_tripped=not alarms and not why.startswith("stopped"))
        self.event(rec, now, f"(service {rec['name']}) rolling back to deployment {rec['dep_id']}.")
        self.reconcile(ctx, rec, now)

    def notice(self, ctx: Ctx, rec: dict, now: float):
        """The events ECS writes as time passes: targets registered, targets unhealthy, steady state."""
        for task in rec["tasks"]:
            tg = next(iter(self.task_specs(rec, task)), None)
            if task["run_at"] is None or task["run_at"] > now:
                continue
            if tg and "registered" not in task["noted"] and (task["stop_at"] is None or task["stop_at"] > task["run_at"]):
                task["noted"].add("registered")
                self.event(rec, task["run_at"], f"(service {rec['name']}) registered 1 targets in (target-group {tg['arn']})")
            if tg and "unhealthy" not in task["noted"] and self.image_fails(ctx, task["taskdef"]):
                info = self.tg_info(ctx, tg["arn"])
                at = task["run_at"] + 2 * (info["interval"] if info else 30) * float(self.cfg["time_scale"])
                if at <= now and (task["stop_at"] is None or task["stop_at"] > at):
                    task["noted"].add("unhealthy")
                    self.event(rec, at, f"(service {rec['name']}) (task {task['id']}) (port {tg['port']}) is unhealthy in "
                                        f"(target-group {tg['arn']}) due to (reason Health checks failed with these codes: [502]).")
        if rec["completed_at"] is not None and rec.get("noted_complete") != rec["dep_id"]:
            rec["noted_complete"] = rec["dep_id"]
            self.event(rec, rec["completed_at"], f"(service {rec['name']}) deployment {rec['dep_id']} deployment completed.")
            self.event(rec, rec["completed_at"], f"(service {rec['name']}) has reached a steady state.")

    def healthy_at(self, ctx: Ctx, rec: dict, task: dict):
        if task["run_at"] is None:
            return None
        if self.image_fails(ctx, task["taskdef"]):
            return None
        at = task["run_at"]
        for spec in self.task_specs(rec, task):
            info = self.tg_info(ctx, spec["arn"])
            if info is None:
                continue
            if not info["lbs"]:
                return None
            active = max(self.lb_active_at(lb) for lb in info["lbs"])
            at = max(at, max(task["run_at"], active) + info["interval"] * info["threshold"] * float(self.cfg["time_scale"]))
        return at

    def target_state(self, ctx: Ctx, rec: dict, task: dict, tg: str):
        now = ctx.now
        if task["run_at"] is None or task["run_at"] > now:
            return None
        if task["gone_at"] is not None and task["gone_at"] <= now:
            return None
        if task["stop_at"] is not None:
            return "draining"
        info = self.tg_info(ctx, tg)
        if info is not None and not info["lbs"]:
            return "unused"
        h = self.healthy_at(ctx, rec, task)
        if h is None and info is not None and self.image_fails(ctx, task["taskdef"]):
            return "unhealthy" if now >= task["run_at"] + 2 * info["interval"] * float(self.cfg["time_scale"]) else "initial"
        return "healthy" if h is not None and h <= now else "initial"

    def svc_view(self, ctx: Ctx, rec: dict) -> dict:
        now = ctx.now
        self.assign_run(ctx, rec)
        self.fail_tasks(ctx, rec, now)
        self.circuit_breaker(ctx, rec, now)
        self.alarm_watch(ctx, rec, now)
        self.bg_advance(ctx, rec, now)
        self.assign_run(ctx, rec)
        status = self.svc_status(rec, now)
        running = sum(1 for t in rec["tasks"] if self.task_running(t, now))
        live = [t for t in rec["tasks"] if t["stop_at"] is None]
        live_running = sum(1 for t in live if self.task_running(t, now))
        pending = len(live) - live_running
        if rec["completed_at"] is None and not rec.get("bg") and status == "ACTIVE" and len(live) == rec["desired"]:
            steady = True
            for t in live:
                h = self.healthy_at(ctx, rec, t) if self.task_running(t, now) else None
                if h is None or h > now:
                    steady = False
                    break
            if steady:
                rec["completed_at"] = now
        self.notice(ctx, rec, now)
        rollout = "COMPLETED" if rec["completed_at"] is not None else "IN_PROGRESS"
        if rec.get("rollout_failed"):
            rollout = "FAILED"
        self.sd_update(rec, now)
        # The PRIMARY deployment's own tasks (during a blue/green-type deployment the old ones run beside them).
        own = [t for t in live if t["deployment"] == rec["dep_id"]]
        own_running = sum(1 for t in own if self.task_running(t, now))
        return {"status": status, "running": running, "pending": pending, "live_running": live_running,
                "rollout": rollout, "own_running": own_running, "own_pending": len(own) - own_running}

    def apply_view(self, ctx: Ctx, svc: dict):
        rec = self.services.get(svc.get("serviceArn"))
        if rec is None:
            return False
        view = self.svc_view(ctx, rec)
        svc.update(rec.get("settings") or {})
        svc["status"] = view["status"]
        svc["runningCount"] = view["running"]
        svc["pendingCount"] = view["pending"]
        if view["status"] != "ACTIVE":
            svc["desiredCount"] = 0
        # A service runs by its strategy or by its launch type, never both (moto keeps the launch type it was
        # created with, and an empty strategy after a switch back).
        if rec.get("strategy"):
            svc["capacityProviderStrategy"] = rec["strategy"]
            svc.pop("launchType", None)
        else:
            svc.pop("capacityProviderStrategy", None)
            svc["launchType"] = "FARGATE"
        # moto keeps the first deployment forever; the PRIMARY one runs the current task definition.
        svc["taskDefinition"] = rec["taskdef"]
        primary = None
        for dep in svc.get("deployments") or []:
            if dep.get("status") != "PRIMARY":
                continue
            primary = dep
            dep["id"] = rec["dep_id"]
            dep["createdAt"] = rec["dep_created"]
            dep["taskDefinition"] = rec["taskdef"]
            dep["desiredCount"] = rec["desired"] if view["status"] == "ACTIVE" else 0
            dep["runningCount"] = view["own_running"] if rec.get("bg") else view["live_running"]
            dep["pendingCount"] = view["own_pending"] if rec.get("bg") else view["pending"]
            dep["failedTasks"] = rec["dep_failed"]
            dep["rolloutState"] = view["rollout"]
            word = "completed" if view["rollout"] == "COMPLETED" else "in progress"
            dep["rolloutStateReason"] = f"ECS deployment {rec['dep_id']} {word}."
            if rec.get("rollback_reason"):
                dep["rolloutStateReason"] = rec["rollback_reason"]
        # Older deployments stay ACTIVE while their tasks still run (draining).
        now = ctx.now
        rec["old_deps"] = [d for d in rec["old_deps"]
                           if any(t["deployment"] == d["id"] and self.task_running(t, now) for t in rec["tasks"])]
        if primary is not None:
            svc["deployments"] = [primary] + [
                {"id": d["id"], "status": "ACTIVE", "taskDefinition": d["taskdef"], "pendingCount": 0,
                 # the old revision of a blue/green-type deployment keeps its tasks until CLEAN_UP
                 "desiredCount": sum(1 for t in rec["tasks"] if t["deployment"] == d["id"] and t["stop_at"] is None),
                 "runningCount": sum(1 for t in rec["tasks"] if t["deployment"] == d["id"] and self.task_running(t, now)),
                 "failedTasks": 0, "createdAt": d["created"], "updatedAt": now, "launchType": primary.get("launchType"),
                 "rolloutState": d.get("rollout", "COMPLETED"),
                 "rolloutStateReason": d.get("reason") or f"ECS deployment {d['id']} completed."}
                for d in reversed(rec["old_deps"])]
        events = sorted(rec["events"], key=lambda e: (e["createdAt"], e["seq"]), reverse=True)[:100]
        svc["events"] = [{"id": e["id"], "createdAt": e["createdAt"], "message": e["message"]} for e in events]
        return True

    def task_doc(self, ctx: Ctx, rec: dict, task: dict) -> dict:
        """A task as DescribeTasks shows it."""
        now = ctx.now
        arn_prefix = rec["arn"].split(":service/")[0]
        cluster = self.cluster_name(rec["cluster"])
        if task["stop_at"] is not None and (task["gone_at"] is None or task["gone_at"] <= now):
            last = "STOPPED"
        elif task["stop_at"] is not None:
            last = "DEPROVISIONING"
        elif self.task_running(task, now):
            last = "RUNNING"
        else:
            last = "PENDING"
        try:
            td = self.resolve_taskdef(ctx, task["taskdef"])
        except UpstreamError:
            td = {}
        container = next(iter(td.get("containerDefinitions") or []), {})
        doc = {
            "taskArn": f"{arn_prefix}:task/{cluster}/{task['id']}",
            "clusterArn": f"{arn_prefix}:cluster/{cluster}",
            "taskDefinitionArn": task["taskdef"],
            "group": f"service:{rec['name']}",
            "startedBy": task["deployment"],
            "launchType": "FARGATE",
            **({"capacityProviderName": task["provider"]} if task.get("provider") else {}),
            "lastStatus": last,
            "desiredStatus": "STOPPED" if task["stop_at"] is not None else "RUNNING",
            "availabilityZone": task["az"] or "",
            "createdAt": task["requested"],
            "containers": [{"name": container.get("name", "app"), "image": container.get("image", ""),
                            "lastStatus": last if last != "DEPROVISIONING" else "RUNNING",
                            "networkInterfaces": [{"privateIpv4Address": task["ip"]}]}],
        }
        if task["run_at"] is not None and task["run_at"] <= now:
            doc["startedAt"] = task["run_at"]
        if task["stop_at"] is not None:
            doc["stoppingAt"] = task["stop_at"]
            doc["stopCode"] = task["stop_code"]
            doc["stoppedReason"] = task["stop_reason"]
            if task["stop_code"] == "TaskFailedToStart":
                doc["containers"][0]["reason"] = task["stop_reason"]
            if last == "STOPPED":
                doc["stoppedAt"] = task["gone_at"]
        return doc

    # ---- ECS deployment strategies, service deployments and revisions (issue 20) -----------------
    # ECS (2025) runs BLUE_GREEN, CANARY and LINEAR itself: the new revision's full task set starts in the
    # target group that does not serve (the alternate one the first time), the production listener rule's
    # forward weights move to it (ModifyRule, made here in moto as ECS makes it), both task sets run through
    # the bake, then CLEAN_UP stops the old ones. Deployment alarms (any strategy) roll a deployment back.
    # moto has none of this, nor ListServiceDeployments / DescribeServiceDeployments / DescribeServiceRevisions.

    STRATEGIES = ("ROLLING", "BLUE_GREEN", "CANARY", "LINEAR")
    # (field, section, key, low, high, multiple of 0.1), ranges from the ECS API reference
    STRATEGY_RANGES = (
        ("bakeTimeInMinutes", None, "bakeTimeInMinutes", 0, 1440, False),
        ("canaryConfiguration.canaryPercent", "canaryConfiguration", "canaryPercent", 0.1, 100.0, True),
        ("canaryConfiguration.canaryBakeTimeInMinutes", "canaryConfiguration", "canaryBakeTimeInMinutes", 0, 1440, False),
        ("linearConfiguration.stepPercent", "linearConfiguration", "stepPercent", 3.0, 100.0, True),
        ("linearConfiguration.stepBakeTimeInMinutes", "linearConfiguration", "stepBakeTimeInMinutes", 0, 1440, False),
    )

    def task_specs(self, rec: dict, task: dict) -> list:
        """The load balancer entries a task is registered with: a task of a blue/green-type service is in one
        target group (its revision's); a rolling service's tasks are in every target group of the service."""
        if task.get("tg"):
            base = rec["tgs"][0] if rec["tgs"] else {"container": None, "port": 80}
            return [dict(base, arn=task["tg"])]
        return rec["tgs"]

    @staticmethod
    def merged_dc(rec: dict | None, req: dict) -> dict:
        """The deploymentConfiguration after this request (ECS keeps what an update leaves out)."""
        old = dict(((rec or {}).get("settings") or {}).get("deploymentConfiguration") or {})
        new = req.get("deploymentConfiguration") or {}
        if new.get("strategy") and new.get("strategy") != old.get("strategy"):
            old.pop("canaryConfiguration", None)  # the other strategy's settings go with it
            old.pop("linearConfiguration", None)
        return {**old, **new}

    def check_deployment_strategy(self, ctx: Ctx, req: dict, rec: dict | None):
        """ECS's checks of a strategy and its load balancer's advancedConfiguration (moto checks nothing)."""
        own = req.get("deploymentConfiguration") or {}
        dc = self.merged_dc(rec, req)
        strategy = dc.get("strategy") or "ROLLING"
        if strategy not in self.STRATEGIES:
            raise Reject("InvalidParameterException", f"Invalid deployment strategy '{strategy}'. Valid values are "
                                                      "ROLLING, BLUE_GREEN, LINEAR, CANARY.")
        for section, wanted in (("canaryConfiguration", "CANARY"), ("linearConfiguration", "LINEAR")):
            if own.get(section) is not None and strategy != wanted:
                raise Reject("InvalidParameterException", f"{section} can only be specified when the deployment "
                                                          f"strategy is {wanted}.")
        for field, section, key, low, high, tenths in self.STRATEGY_RANGES:
            value = (dc.get(section) or {}).get(key) if section else dc.get(key)
            if value is None:
                continue
            off_grid = tenths and abs(round(float(value) * 10) - float(value) * 10) > 1e-6
            if not low <= float(value) <= high or off_grid:
                grid = "a multiple of 0.1 " if tenths else ""
                raise Reject("InvalidParameterException", f"Invalid value {value} for deploymentConfiguration.{field}: "
                                                          f"it must be {grid}between {low} and {high}.")
        if strategy == "ROLLING":
            return
        controller = (req.get("deploymentController") or {}).get("type") or "ECS"
        if controller != "ECS":
            raise Reject("InvalidParameterException", f"The {strategy} deployment strategy requires the ECS "
                                                      "deployment controller.")
        specs = req["loadBalancers"] if req.get("loadBalancers") is not None else (rec or {}).get("lb_specs") or []
        for spec in specs:
            self.check_advanced_configuration(ctx, spec, strategy)

    def check_advanced_configuration(self, ctx: Ctx, spec: dict, strategy: str):
        adv = spec.get("advancedConfiguration") or {}
        primary = spec.get("targetGroupArn")
        for key in ("alternateTargetGroupArn", "productionListenerRule", "roleArn"):
            if not adv.get(key):
                raise Reject("InvalidParameterException", f"loadBalancers.advancedConfiguration.{key} is required for "
                                                          f"target group {primary} with the {strategy} deployment strategy.")
        alt, rule_arn, role = adv["alternateTargetGroupArn"], adv["productionListenerRule"], adv["roleArn"]
        if alt == primary:
            raise Reject("InvalidParameterException", f"The alternate target group {alt} must differ from the target "
                                                      "group of the load balancer.")
        info, pinfo = self.tg_info(ctx, alt), self.tg_info(ctx, primary) if primary else None
        if info is None:
            raise Reject("InvalidParameterException", f"The target group with targetGroupArn {alt} does not exist.")
        if info["type"] != "ip":
            raise Reject("InvalidParameterException",
                         f"The provided target group {alt} has target type {info['type']}, which is incompatible "
                         "with the awsvpc network mode specified in the task definition.")
        if pinfo is not None and pinfo.get("vpc") != info.get("vpc"):
            raise Reject("InvalidParameterException", f"The alternate target group {alt} must be in the same VPC as "
                                                      f"the target group {primary}.")
        rule = self.describe_rule(ctx, rule_arn)
        if rule is None:
            raise Reject("InvalidParameterException", f"The production listener rule {rule_arn} does not exist.")
        if rule["types"] != ["forward"] or not {primary, alt} <= set(rule["weights"]):
            raise Reject("InvalidParameterException", f"The production listener rule {rule_arn} must have a single "
                                                      f"forward action to target groups {primary} and {alt}.")
        if rule["lb"] not in info["lbs"]:
            raise Reject("InvalidParameterException",
                         f"The target group with targetGroupArn {alt} does not have an associated load balancer.")
        self.check_infrastructure_role(ctx, role)

    def check_infrastructure_role(self, ctx: Ctx, role: str):
        message = (f"Amazon ECS was unable to assume the role '{role}' to manage the load balancer. Please verify that "
                   "the role exists, has a trust relationship with ecs.amazonaws.com and that your IAM user has "
                   "permissions to pass this role.")
        name = role.split("/")[-1]
        created = self.roles.get(name)
        if created is not None and ctx.now < created + self.d("iam_propagation_s"):
            raise Reject("InvalidParameterException", message)
        try:
            root = self.query(ctx, "iam", "GetRole", {"RoleName": name})
        except UpstreamError:
            raise Reject("InvalidParameterException", message)
        trust = urllib.parse.unquote(xt(root, "./GetRoleResult/Role/AssumeRolePolicyDocument") or "")
        if '"ecs.amazonaws.com"' not in trust.replace(" ", ""):
            raise Reject("InvalidParameterException", message)

    def describe_rule(self, ctx: Ctx, arn: str):
        """A listener rule from moto: its action types, forward weights by target group, its load balancer."""
        try:
            root = self.query(ctx, "elasticloadbalancing", "DescribeRules", {"RuleArns.member.1": arn})
        except UpstreamError:
            return None
        m = root.find("./DescribeRulesResult/Rules/member")
        if m is None:
            return None
        types, weights = [], {}
        for a in m.findall("./Actions/member"):
            types.append(xt(a, "Type"))
            if xt(a, "TargetGroupArn"):
                weights[xt(a, "TargetGroupArn")] = 1
            for t in a.findall("./ForwardConfig/TargetGroups/member"):
                weights[xt(t, "TargetGroupArn")] = int(xt(t, "Weight") or 1)
        # listener-rule/app/NAME/LB-ID/LISTENER-ID/RULE-ID -> loadbalancer/app/NAME/LB-ID
        head, _, tail = arn.partition(":listener-rule/")
        lb = f"{head}:loadbalancer/{'/'.join(tail.split('/')[:3])}"
        return {"types": types, "weights": weights, "lb": lb}

    def set_weights(self, ctx: Ctx, rule: str, blue: str, green: str, green_percent: float):
        """ECS's ModifyRule of the production rule: forward to both target groups by weight (whole percents,
        or per mille when the percent has a tenth)."""
        scale = 1 if float(green_percent).is_integer() else 10
        green_w = int(round(green_percent * scale))
        params = {"RuleArn": rule, "Actions.member.1.Type": "forward",
                  "Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn": blue,
                  "Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight": str(100 * scale - green_w),
                  "Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn": green,
                  "Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight": str(green_w)}
        try:
            self.query(ctx, "elasticloadbalancing", "ModifyRule", params)
        except UpstreamError:
            pass  # the rule is gone (deleted under a deployment): ECS would fail to shift; nothing to move here
        self.routing_refresh(ctx, set(self.routes))

    # -- service revisions and service deployments

    @staticmethod
    def arn_prefix(rec: dict) -> str:
        return rec["arn"].split(":service/")[0]

    def new_revision(self, rec: dict, now: float) -> str:
        arn = (f"{self.arn_prefix(rec)}:service-revision/{self.cluster_name(rec['cluster'])}/{rec['name']}/"
               f"{random.randrange(10 ** 18, 10 ** 19)}")
        rec.setdefault("revisions", {})[arn] = {
            "taskdef": rec["taskdef"], "created": now, "lbs": json.loads(json.dumps(rec.get("lb_specs") or [])),
            "net": {"awsvpcConfiguration": {"subnets": list(rec["subnets"]), "securityGroups": list(rec["sgs"]),
                                            "assignPublicIp": "ENABLED" if rec["public_ip"] else "DISABLED"}},
            "strategy": list(rec.get("strategy") or [])}
        rec["revision"] = arn
        return arn

    def new_service_deployment(self, rec: dict, now: float, source: str | None) -> dict:
        token = "".join(random.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(21))
        dc = json.loads(json.dumps((rec.get("settings") or {}).get("deploymentConfiguration") or {}))
        sd = {"arn": f"{self.arn_prefix(rec)}:service-deployment/{self.cluster_name(rec['cluster'])}/{rec['name']}/{token}",
              "created": now, "started": now, "finished": None, "stopped": None, "updated": now,
              "status": "IN_PROGRESS", "reason": None, "target": rec["revision"], "sources": [source] if source else [],
              "dep_id": rec["dep_id"], "dc": dc, "strategy": dc.get("strategy") or "ROLLING", "rollback": None,
              "rollback_dep": None, "triggered": [], "cb_tripped": False}
        rec.setdefault("sds", []).append(sd)
        return sd

    @staticmethod
    def current_sd(rec: dict):
        return (rec.get("sds") or [None])[-1]

    @staticmethod
    def sd_reason(why: str, alarms: list | None, rolled_back: bool) -> str:
        if alarms:
            cause = f"CloudWatch alarm(s) {', '.join(alarms)} went into ALARM state"
        elif why.startswith("stopped"):
            cause = "of a StopServiceDeployment request"
        else:
            cause = "the circuit breaker threshold was exceeded"
        return f"Service deployment {'rolled back' if rolled_back else 'failed'} because {cause}."

    def sd_update(self, rec: dict, now: float):
        """A rolling deployment's status from the service's state (a blue/green one is moved by bg_advance)."""
        sd = self.current_sd(rec)
        if sd is None or (rec.get("bg") and rec["bg"]["sd"] is sd) or sd["status"] not in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS"):
            return
        if sd["status"] == "ROLLBACK_IN_PROGRESS":
            if rec["dep_id"] == sd["rollback_dep"] and rec["completed_at"] is not None:
                sd.update(status="ROLLBACK_SUCCESSFUL", finished=rec["completed_at"], updated=rec["completed_at"])
        elif rec["dep_id"] == sd["dep_id"] and rec["completed_at"] is not None:
            sd.update(status="SUCCESSFUL", finished=rec["completed_at"], updated=rec["completed_at"],
                      reason="Service deployment completed successfully.")

    def supersede(self, ctx: Ctx, rec: dict, now: float):
        """A new deployment replaces one still running: ECS stops it (a blue/green one's new tasks stop and the
        production traffic goes back to the old revision)."""
        bg = rec.get("bg")
        if bg is not None:
            if bg["phase"] == "deploy":
                stage = self.bg_stage(bg, now)
                self.bg_restore(ctx, rec, now, None)
                bg["sd"].update(status="STOPPED", stopped=now, updated=now, stage=stage,
                                reason="Service deployment stopped: a newer service deployment started.")
            else:
                bg["sd"].update(status="ROLLBACK_SUCCESSFUL", finished=now, updated=now)
            rec["bg"] = None
        sd = self.current_sd(rec)
        if sd is not None and sd["status"] in ("PENDING", "IN_PROGRESS"):
            sd.update(status="STOPPED", stopped=now, updated=now,
                      reason="Service deployment stopped: a newer service deployment started.")

    # -- alarms during a deployment

    def alarm_hit(self, rec: dict, names: list, start: float, end: float):
        """(time, [names]) of the first moment in [start, end] an alarm was in ALARM, or None."""
        region = rec["arn"].split(":")[3]
        first = None
        for name in names:
            hist = self.alarm_history.get((region, name), [])
            before = [state for t, state in hist if t <= start]
            at = start if before and before[-1] == "ALARM" else next(
                (t for t, state in hist if start < t <= end and state == "ALARM"), None)
            if at is None:
                continue
            if first is None or at < first[0]:
                first = (at, [name])
            elif at == first[0]:
                first[1].append(name)
        return first

    def watched_alarms(self, sd: dict) -> list:
        alarms = sd["dc"].get("alarms") or {}
        return list(alarms.get("alarmNames") or []) if alarms.get("enable") else []

    def alarm_watch(self, ctx: Ctx, rec: dict, now: float):
        """A rolling deployment (or a service's first, which has nothing to shift traffic from) whose alarm goes
        into ALARM before it completed (and rolling_alarm_bake_s after) fails: rolled back if the alarms say
        rollback."""
        sd = self.current_sd(rec)
        if (sd is None or rec.get("bg") or sd["status"] != "IN_PROGRESS" or rec["dep_id"] != sd["dep_id"]
                or rec.get("rollout_failed")):
            return
        names = self.watched_alarms(sd)
        if not names:
            return
        end = now if rec["completed_at"] is None else min(now, rec["completed_at"] + self.d("rolling_alarm_bake_s"))
        hit = self.alarm_hit(rec, names, sd["started"], end)
        if hit is None:
            return
        if (sd["dc"].get("alarms") or {}).get("rollback"):
            self.trip(ctx, rec, max(hit[0], sd["started"]), "alarm detected", hit[1])
        else:
            rec["rollout_failed"] = True
            rec["rollback_reason"] = f"alarm(s) {', '.join(hit[1])} in ALARM; deployment failed"
            self.event(rec, hit[0], f"(service {rec['name']}) (deployment {rec['dep_id']}) deployment failed: alarm detected.")
            sd.update(status="STOPPED", stopped=hit[0], updated=hit[0], triggered=hit[1],
                      reason=self.sd_reason("alarm", hit[1], rolled_back=False))

    # -- blue/green, canary, linear

    def bg_start(self, ctx: Ctx, rec: dict, now: float, sd: dict, spec: dict, source: str | None):
        adv = spec["advancedConfiguration"]
        primary, alt = spec["targetGroupArn"], adv["alternateTargetGroupArn"]
        blue = rec.get("serving_tg") if rec.get("serving_tg") in (primary, alt) else primary
        rec["task_tg"] = alt if blue == primary else primary
        rec["bg"] = {"sd": sd, "strategy": sd["strategy"], "blue_tg": blue, "green_tg": rec["task_tg"],
                     "rule": adv["productionListenerRule"], "blue_dep": rec["old_deps"][-1], "blue_rev": source,
                     "dep_id": rec["dep_id"], "start": now, "scaled": None, "plan": None, "cleaned": False,
                     "phase": "deploy", "applied": None, "done_at": None}

    def bg_plan(self, bg: dict, scaled: float) -> dict:
        """The stages after the new tasks are healthy, and the production shifts [(time, new revision's %)]."""
        s, minute = self.d("deploy_stage_s"), 60 * float(self.cfg["time_scale"])
        dc = bg["sd"]["dc"]
        t = scaled + 3 * s
        stages = [("POST_SCALE_UP", scaled), ("TEST_TRAFFIC_SHIFT", scaled + s), ("POST_TEST_TRAFFIC_SHIFT", scaled + 2 * s),
                  ("PRODUCTION_TRAFFIC_SHIFT", t)]
        if bg["strategy"] == "CANARY":
            canary = dc.get("canaryConfiguration") or {}
            bake = float(canary.get("canaryBakeTimeInMinutes", 10)) * minute
            shifts = [(t, float(canary.get("canaryPercent", 5.0))), (t + bake, 100.0)]
        elif bg["strategy"] == "LINEAR":
            linear = dc.get("linearConfiguration") or {}
            step, bake = float(linear.get("stepPercent", 10.0)), float(linear.get("stepBakeTimeInMinutes", 6)) * minute
            shifts, weight = [(t, min(step, 100.0))], min(step, 100.0)
            while weight < 100.0:
                weight = min(100.0, round(weight + step, 1))
                shifts.append((shifts[-1][0] + bake, weight))
        else:
            shifts = [(t, 100.0)]
        post = shifts[-1][0] + s
        bake_end = post + s + float(dc.get("bakeTimeInMinutes") or 0) * minute
        stages += [("POST_PRODUCTION_TRAFFIC_SHIFT", post), ("BAKE_TIME", post + s), ("CLEAN_UP", bake_end)]
        return {"stages": stages, "shifts": shifts, "bake_end": bake_end}

    def bg_stage(self, bg: dict, now: float) -> str:
        if bg["phase"] != "deploy":
            return bg.get("rollback_stage") or "CLEAN_UP"  # the stage the deployment was rolled back in
        if bg["plan"] is None:
            return "PRE_SCALE_UP" if now < bg["start"] + self.d("deploy_stage_s") else "SCALE_UP"
        return [name for name, at in bg["plan"]["stages"] if at <= now][-1] if now >= bg["plan"]["stages"][0][1] else "SCALE_UP"

    def bg_weight(self, bg: dict, now: float) -> float:
        """The new revision's share of production traffic now."""
        if bg["phase"] != "deploy" or bg["plan"] is None:
            return 0.0
        shifted = [w for t, w in bg["plan"]["shifts"] if t <= now]
        return shifted[-1] if shifted else 0.0

    def bg_advance(self, ctx: Ctx, rec: dict, now: float):
        """Move a blue/green-type deployment on to `now`: scale-up done, alarms, clean-up, end; and put the
        production rule's weights where ECS has them."""
        bg = rec.get("bg")
        if bg is None:
            return
        if bg["phase"] == "deploy":
            green = [t for t in rec["tasks"] if t["deployment"] == bg["dep_id"] and t["stop_at"] is None]
            if bg["plan"] is None and len(green) >= rec["desired"]:
                healthy = [self.healthy_at(ctx, rec, t) if t["run_at"] is not None else None for t in green]
                if all(h is not None and h <= now for h in healthy):
                    bg["scaled"] = max(healthy + [bg["start"] + self.d("deploy_stage_s")])
                    bg["plan"] = self.bg_plan(bg, bg["scaled"])
            names = self.watched_alarms(bg["sd"])
            end = min(now, bg["plan"]["bake_end"]) if bg["plan"] else now
            hit = self.alarm_hit(rec, names, bg["start"], end) if names else None
            if hit is not None and (bg["sd"]["dc"].get("alarms") or {}).get("rollback"):
                self.bg_rollback(ctx, rec, max(hit[0], bg["start"]), "alarm detected", hit[1])
            elif bg["plan"] is not None and now >= bg["plan"]["bake_end"] and not bg["cleaned"]:
                at = bg["plan"]["bake_end"]
                bg["cleaned"] = True
                blue = [t for t in rec["tasks"] if t["deployment"] == bg["blue_dep"]["id"] and t["stop_at"] is None]
                self.stop_tasks(ctx, rec, blue, at)
                bg["done_at"] = max([at] + [t["gone_at"] for t in blue if t["gone_at"] is not None])
        if bg["phase"] == "deploy" and bg["cleaned"] and now >= bg["done_at"]:
            rec["completed_at"] = bg["done_at"]
            rec["serving_tg"] = bg["green_tg"]
            bg["sd"].update(status="SUCCESSFUL", finished=bg["done_at"], updated=bg["done_at"], stage="CLEAN_UP",
                            reason="Service deployment completed successfully.")
            rec["bg"] = None
        elif bg["phase"] == "rollback" and now >= bg["done_at"]:
            bg["sd"].update(status="ROLLBACK_SUCCESSFUL", finished=bg["done_at"], updated=bg["done_at"],
                            stage=bg.get("rollback_stage"))
            self.event(rec, bg["done_at"], f"(service {rec['name']}) has reached a steady state.")
            rec["bg"] = None
        weight = self.bg_weight(bg, now) if bg["phase"] == "deploy" and not (bg["cleaned"] and now >= bg["done_at"]) else (
            100.0 if bg["phase"] == "deploy" else 0.0)
        if weight != bg["applied"]:
            self.set_weights(ctx, bg["rule"], bg["blue_tg"], bg["green_tg"], weight)
            bg["applied"] = weight

    def bg_restore(self, ctx: Ctx, rec: dict, at: float, reason: str | None):
        """The old revision is the service's again: the new tasks stop, production traffic back on it."""
        bg = rec["bg"]
        failed = {"id": rec["dep_id"], "taskdef": rec["taskdef"], "created": rec["dep_created"], "rollout": "FAILED",
                  "reason": reason or f"ECS deployment {rec['dep_id']} stopped."}
        green = [t for t in rec["tasks"] if t["deployment"] == bg["dep_id"] and t["stop_at"] is None]
        self.stop_tasks(ctx, rec, green, at)
        blue = bg["blue_dep"]
        rec["old_deps"] = [d for d in rec["old_deps"] if d["id"] != blue["id"]] + [failed]
        rec["dep_id"], rec["dep_created"], rec["taskdef"] = blue["id"], blue["created"], blue["taskdef"]
        rec["revision"], rec["task_tg"] = bg["blue_rev"], bg["blue_tg"]
        rec["completed_at"] = at
        rec["noted_complete"] = blue["id"]  # ECS tells of the rollback, not of a completed deployment
        bg["done_at"] = max([at] + [t["gone_at"] for t in green if t["gone_at"] is not None])
        self.set_weights(ctx, bg["rule"], bg["blue_tg"], bg["green_tg"], 0.0)
        bg["applied"] = 0.0

    def bg_rollback(self, ctx: Ctx, rec: dict, at: float, why: str, alarms: list | None):
        bg = rec["bg"]
        if bg["phase"] != "deploy":
            return
        sd = bg["sd"]
        failed_dep, failed_td = rec["dep_id"], rec["taskdef"]
        self.event(rec, at, f"(service {rec['name']}) (deployment {failed_dep}) deployment failed: {why}.")
        detector = f"alarm(s) {', '.join(alarms)} in ALARM" if alarms else why
        reason = f"{detector}; rolled back from {failed_td} to {bg['blue_dep']['taskdef']}"
        self.bg_restore(ctx, rec, at, reason)
        rec["rollback_reason"] = reason
        bg["phase"] = "rollback"
        text = self.sd_reason(why, alarms, rolled_back=True)
        sd.update(status="ROLLBACK_IN_PROGRESS", reason=text, updated=at, triggered=alarms or [],
                  cb_tripped=not alarms and not why.startswith("stopped"),
                  rollback={"reason": text, "startedAt": at, "serviceRevisionArn": bg["blue_rev"]})
        bg["rollback_stage"] = self.bg_stage(dict(bg, phase="deploy"), at)
        self.event(rec, at, f"(service {rec['name']}) rolling back to deployment {rec['dep_id']}.")

    # -- the API ECS has and moto has not

    def _ecs_json(self, doc: dict) -> Response:
        return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        json.dumps(doc).encode(), injected=True)

    def revision_counts(self, ctx: Ctx, rec: dict, arn: str, requested: int) -> dict:
        tasks = [t for t in rec["tasks"] if t.get("revision") == arn and t["stop_at"] is None]
        running = sum(1 for t in tasks if self.task_running(t, ctx.now))
        return {"arn": arn, "requestedTaskCount": requested, "runningTaskCount": running,
                "pendingTaskCount": len(tasks) - running}

    def sd_doc(self, ctx: Ctx, rec: dict, sd: dict) -> dict:
        now = ctx.now
        current = sd is self.current_sd(rec)
        bg = rec.get("bg") if rec.get("bg") and rec["bg"]["sd"] is sd else None
        live = current and sd["status"] in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS")
        target_wanted = rec["desired"] if live and sd["status"] == "IN_PROGRESS" else (
            rec["desired"] if sd["status"] == "SUCCESSFUL" and current else 0)
        doc = {"serviceDeploymentArn": sd["arn"], "serviceArn": rec["arn"],
               "clusterArn": f"{self.arn_prefix(rec)}:cluster/{self.cluster_name(rec['cluster'])}",
               "createdAt": sd["created"], "startedAt": sd["started"], "updatedAt": max(sd["updated"], sd["started"]),
               "targetServiceRevision": self.revision_counts(ctx, rec, sd["target"], target_wanted),
               "sourceServiceRevisions": [self.revision_counts(ctx, rec, a, 0 if sd["status"] == "SUCCESSFUL" or not live
                                                               or bg is None else rec["desired"]) for a in sd["sources"]],
               "status": sd["status"], "deploymentConfiguration": sd["dc"]}
        if sd["reason"]:
            doc["statusReason"] = sd["reason"]
        for key, field in (("finished", "finishedAt"), ("stopped", "stoppedAt")):
            if sd[key] is not None:
                doc[field] = sd[key]
        if bg is None and sd.get("stage"):
            doc["lifecycleStage"] = sd["stage"]  # where a finished blue/green-type deployment ended
        if bg is not None:
            doc["lifecycleStage"] = self.bg_stage(bg, now)
            changes = [bg["start"], bg["start"] + self.d("deploy_stage_s")] + (
                [t for _, t in bg["plan"]["stages"]] + [t for t, _ in bg["plan"]["shifts"]] if bg["plan"] else [])
            doc["updatedAt"] = max([doc["updatedAt"]] + [t for t in changes if t <= now])
            weight = self.bg_weight(bg, now) if bg["phase"] == "deploy" else 0.0
            doc["targetServiceRevision"]["requestedProductionTrafficWeight"] = weight
            for source in doc["sourceServiceRevisions"]:
                source["requestedProductionTrafficWeight"] = 100.0 - weight
        if sd["rollback"]:
            doc["rollback"] = sd["rollback"]
        cb = sd["dc"].get("deploymentCircuitBreaker") or {}
        done = sd["status"] not in ("PENDING", "IN_PROGRESS")
        doc["deploymentCircuitBreaker"] = {
            "status": "DISABLED" if not cb.get("enable") else "TRIGGERED" if sd["cb_tripped"] else
            "MONITORING_COMPLETE" if done else "MONITORING",
            "failureCount": rec["dep_failed"] if current else 0,
            "threshold": max(int(self.cfg["circuit_breaker_min_failed_tasks"]), (rec["desired"] + 1) // 2)}
        alarms = sd["dc"].get("alarms") or {}
        doc["alarms"] = {"status": "DISABLED" if not alarms.get("enable") else "TRIGGERED" if sd["triggered"] else
                         "MONITORING_COMPLETE" if done else "MONITORING",
                         "alarmNames": list(alarms.get("alarmNames") or []), "triggeredAlarmNames": list(sd["triggered"])}
        return doc

    def pre_ecs_ListServiceDeployments(self, ctx: Ctx):
        name = (ctx.json.get("service") or "").split("/")[-1]
        rec = self.find_service(ctx.json.get("cluster"), name)
        if rec is None:
            raise Reject("ServiceNotFoundException", "Service not found.")
        self.svc_view(ctx, rec)
        wanted = set(ctx.json.get("status") or [])
        created = ctx.json.get("createdAt") or {}
        briefs = []
        for sd in reversed(rec.get("sds") or []):
            if wanted and sd["status"] not in wanted:
                continue
            if created.get("after") is not None and sd["created"] < float(created["after"]):
                continue
            if created.get("before") is not None and sd["created"] > float(created["before"]):
                continue
            brief = {"serviceDeploymentArn": sd["arn"], "serviceArn": rec["arn"],
                     "clusterArn": f"{self.arn_prefix(rec)}:cluster/{self.cluster_name(rec['cluster'])}",
                     "startedAt": sd["started"], "createdAt": sd["created"], "targetServiceRevisionArn": sd["target"],
                     "status": sd["status"]}
            if sd["finished"] is not None or sd["stopped"] is not None:
                brief["finishedAt"] = sd["finished"] if sd["finished"] is not None else sd["stopped"]
            if sd["reason"]:
                brief["statusReason"] = sd["reason"]
            briefs.append(brief)
        limit = int(ctx.json.get("maxResults") or 20)
        start = int(ctx.json.get("nextToken") or 0)
        out = {"serviceDeployments": briefs[start:start + limit]}
        if start + limit < len(briefs):
            out["nextToken"] = str(start + limit)
        return self._ecs_json(out)

    def find_sd(self, arn: str):
        for rec in self.services.values():
            for sd in rec.get("sds") or []:
                if sd["arn"] == arn:
                    return rec, sd
        return None, None

    def describe_each(self, ctx: Ctx, field: str, out: str, describe) -> Response:
        """A Describe* of 1-20 ARNs: `describe(arn)` gives the document or None (a `MISSING` failure)."""
        arns = ctx.json.get(field) or []
        if not arns or len(arns) > 20:
            raise Reject("InvalidParameterException", f"{field} must contain between 1 and 20 ARNs.")
        found, failures = [], []
        for arn in arns:
            doc = describe(arn)
            if doc is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(doc)
        return self._ecs_json({out: found, "failures": failures})

    def pre_ecs_DescribeServiceDeployments(self, ctx: Ctx):
        def describe(arn):
            rec, sd = self.find_sd(arn)
            if sd is None:
                return None
            self.svc_view(ctx, rec)
            return self.sd_doc(ctx, rec, sd)
        return self.describe_each(ctx, "serviceDeploymentArns", "serviceDeployments", describe)

    def pre_ecs_DescribeServiceRevisions(self, ctx: Ctx):
        return self.describe_each(ctx, "serviceRevisionArns", "serviceRevisions", lambda arn: self.revision_doc(ctx, arn))

    def revision_doc(self, ctx: Ctx, arn: str):
        rec = next((r for r in self.services.values() if arn in (r.get("revisions") or {})), None)
        if rec is None:
            return None
        rev = rec["revisions"][arn]
        try:
            td = self.resolve_taskdef(ctx, rev["taskdef"])
        except UpstreamError:
            td = {}
        doc = {"serviceRevisionArn": arn, "serviceArn": rec["arn"],
               "clusterArn": f"{self.arn_prefix(rec)}:cluster/{self.cluster_name(rec['cluster'])}",
               "taskDefinition": rev["taskdef"], "platformVersion": "1.4.0", "platformFamily": "Linux",
               "loadBalancers": rev["lbs"], "networkConfiguration": rev["net"], "guardDutyEnabled": False,
               "containerImages": [{"containerName": c.get("name"), "image": c.get("image")}
                                   for c in td.get("containerDefinitions") or []],
               "createdAt": rev["created"]}
        if rev["strategy"]:
            doc["capacityProviderStrategy"] = rev["strategy"]
        else:
            doc["launchType"] = "FARGATE"
        return doc

    def pre_ecs_StopServiceDeployment(self, ctx: Ctx):
        """stopType ROLLBACK (the default) of a deployment in progress: rolled back as an alarm would."""
        rec, sd = self.find_sd(ctx.json.get("serviceDeploymentArn") or "")
        if sd is None:
            raise Reject("ServiceDeploymentNotFoundException", "The service deployment does not exist.")
        if (ctx.json.get("stopType") or "ROLLBACK") != "ROLLBACK":
            raise Reject("InvalidParameterException", "Only the ROLLBACK stop type is supported (realism layer).")
        self.svc_view(ctx, rec)
        if sd is not self.current_sd(rec) or sd["status"] != "IN_PROGRESS":
            raise Reject("ConflictException", f"The service deployment {sd['arn']} is not in progress.")
        # a synthesized change: it takes effect only if no injected fault answers instead
        ctx.extra["commit"] = lambda: self.trip(ctx, rec, ctx.now, "stopped by a StopServiceDeployment request")
        return self._ecs_json({"serviceDeploymentArn": sd["arn"]})

    def pre_elb_DescribeRules(self, ctx: Ctx):
        """ECS moves a deployment's weights with time: bring every deployment under way to now first."""
        for rec in list(self.services.values()):
            if rec.get("bg"):
                self.svc_view(ctx, rec)
        return None

    # ---- CloudWatch alarms ---------------------------------------------------------------------
    # moto starts a new alarm OK and resets the state on every PutMetricAlarm, applies Tags sent with an
    # update, and lists a deleted alarm's tags. AWS: a new alarm starts INSUFFICIENT_DATA, an update
    # leaves the state unchanged and ignores Tags, a deleted alarm's ARN is ResourceNotFound. moto never
    # evaluates metrics: SetAlarmState (AWS: "temporarily sets the state ... for testing") is how a test
    # puts an alarm into ALARM, and the state stays until the next SetAlarmState.

    def moto_alarm(self, ctx: Ctx, name: str):
        doc = self.call_json(ctx, "monitoring", "DescribeAlarms", {"AlarmNames": [name]})
        return next((a for a in doc.get("MetricAlarms") or [] if a.get("AlarmName") == name), None)

    def pre_cw_PutMetricAlarm(self, ctx: Ctx):
        name = ctx.json.get("AlarmName") or ""
        existing = self.moto_alarm(ctx, name)
        ctx.extra["alarm_before"] = existing
        if existing is not None and "Tags" in ctx.json:
            doc = dict(ctx.json)
            doc.pop("Tags")
            ctx.set_json_body(doc)
        return None

    def post_cw_PutMetricAlarm(self, ctx: Ctx, resp: Response):
        key = (ctx.region, ctx.json.get("AlarmName") or "")
        before = ctx.extra.get("alarm_before")
        if before is None:
            self.alarm_states[key] = {"StateValue": "INSUFFICIENT_DATA", "StateReason": "Unchecked: Initial alarm creation",
                                      "StateUpdatedTimestamp": ctx.now}
            self.alarm_history[key] = [(ctx.now, "INSUFFICIENT_DATA")]
        elif key not in self.alarm_states:
            self.alarm_states[key] = {k: before.get(k) for k in ("StateValue", "StateReason", "StateUpdatedTimestamp")}

    def post_cw_SetAlarmState(self, ctx: Ctx, resp: Response):
        """The state, its reason and (optional) StateReasonData as AWS's evaluation writes them (a test gives
        "Threshold Crossed: ..." and the JSON with recentDatapoints and threshold); remembered over time for
        the deployment alarm monitoring of ECS services."""
        key = (ctx.region, ctx.json.get("AlarmName") or "")
        state = {"StateValue": ctx.json.get("StateValue"), "StateReason": ctx.json.get("StateReason") or "",
                 "StateUpdatedTimestamp": ctx.now}
        if ctx.json.get("StateReasonData"):
            state["StateReasonData"] = ctx.json["StateReasonData"]
        self.alarm_states[key] = state
        self.alarm_history.setdefault(key, []).append((ctx.now, state["StateValue"]))

    def post_cw_DeleteAlarms(self, ctx: Ctx, resp: Response):
        for name in ctx.json.get("AlarmNames") or []:
            self.alarm_states.pop((ctx.region, name), None)
            self.alarm_history.pop((ctx.region, name), None)

    def pre_cw_DescribeAlarms(self, ctx: Ctx):
        # moto would filter by its own idea of the state: filter by the state AWS would have, after.
        if "StateValue" in ctx.json:
            doc = dict(ctx.json)
            ctx.extra["state_filter"] = doc.pop("StateValue")
            ctx.set_json_body(doc)
        return None

    def post_cw_DescribeAlarms(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        alarms = []
        for alarm in doc.get("MetricAlarms") or []:
            state = self.alarm_states.get((ctx.region, alarm.get("AlarmName")))
            if state is not None:
                alarm.pop("StateReasonData", None)
                alarm.update(state)
            if ctx.extra.get("state_filter") in (None, alarm.get("StateValue")):
                alarms.append(alarm)
        doc["MetricAlarms"] = alarms
        resp.set_json(doc)

    def pre_cw_ListTagsForResource(self, ctx: Ctx):
        arn = ctx.json.get("ResourceARN") or ""
        if ":alarm:" in arn and self.moto_alarm(ctx, arn.split(":alarm:", 1)[1]) is None:
            raise Reject("ResourceNotFoundException", f"Alarm {arn} not found.", 404)
        return None

    def pre_pricing_GetProducts(self, ctx: Ctx):
        """The Price List API, from PRICE_PRODUCTS; signed for a region without its endpoint, refused."""
        if ctx.region not in PRICING_ENDPOINT_REGIONS:
            return ctx.error("UnrecognizedClientException",
                             f"the Price List API has no endpoint in {ctx.region} (only {', '.join(PRICING_ENDPOINT_REGIONS)})")
        try:
            answer = get_products(ctx.json)
        except InvalidNextToken as e:
            return ctx.error("InvalidNextTokenException", str(e))
        except ValueError as e:
            return ctx.error("InvalidParameterException", str(e))
        return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        json.dumps(answer).encode(), injected=True)

    def pre_ecs_ListTasks(self, ctx: Ctx):
        """The overlay's tasks of a service (moto has none): RUNNING by default, or STOPPED."""
        name = ctx.json.get("serviceName")
        rec = self.find_service(ctx.json.get("cluster"), name) if name else None
        if rec is None:
            return None
        self.svc_view(ctx, rec)
        stopped = ctx.json.get("desiredStatus") == "STOPPED"
        tasks = [t for t in rec["tasks"] if (t["stop_at"] is not None) == stopped]
        arns = [self.task_doc(ctx, rec, t)["taskArn"] for t in sorted(tasks, key=lambda t: t["requested"], reverse=True)]
        body = json.dumps({"taskArns": arns[: int(ctx.json.get("maxResults") or 100)]}).encode()
        return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        body, injected=True)

    def pre_ecs_DescribeTasks(self, ctx: Ctx):
        wanted = [t.split("/")[-1] for t in ctx.json.get("tasks") or []]
        found, failures = [], []
        for tid in wanted:
            for rec in self.services.values():
                task = next((t for t in rec["tasks"] if t["id"] == tid), None)
                if task is not None:
                    self.svc_view(ctx, rec)
                    found.append(self.task_doc(ctx, rec, task))
                    break
            else:
                failures.append({"arn": tid, "reason": "MISSING"})
        if not found:
            return None
        body = json.dumps({"tasks": found, "failures": failures}).encode()
        return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        body, injected=True)

    def resolve_taskdef(self, ctx: Ctx, name: str):
        if name in self.taskdefs:
            return self.taskdefs[name]
        doc = self.call_json(ctx, "ecs", "DescribeTaskDefinition", {"taskDefinition": name})
        td = doc.get("taskDefinition") or {}
        if td.get("taskDefinitionArn"):
            self.taskdefs[td["taskDefinitionArn"]] = td
        return td

    @staticmethod
    def cluster_name(value: str | None) -> str:
        return (value or "default").split("/")[-1]

    def find_service(self, cluster: str, name: str):
        cluster = self.cluster_name(cluster)
        for rec in self.services.values():
            if rec["name"] == name and self.cluster_name(rec["cluster"]) == cluster:
                return rec
        return None

    @staticmethod
    def strategy_of(items) -> list:
        """A capacity provider strategy as ECS echoes it (base and weight default to 0)."""
        return [{"capacityProvider": i.get("capacityProvider"), "weight": int(i.get("weight") or 0),
                 "base": int(i.get("base") or 0)} for i in items or []]

    def check_strategy(self, ctx: Ctx, cluster: str | None, items: list):
        """AWS: a strategy may only name providers associated with the cluster (moto takes any), with a base on
        one provider at most and some weight."""
        if not items:
            return
        doc = self.call_json(ctx, "ecs", "DescribeClusters", {"clusters": [self.cluster_name(cluster)]})
        have = set(next(iter(doc.get("clusters") or []), {}).get("capacityProviders") or [])
        if any(i["capacityProvider"] not in have for i in items):
            raise Reject("InvalidParameterException",
                         "The specified capacity provider strategy cannot contain a capacity provider that is not "
                         "associated with the cluster. Associate the capacity provider with the cluster or specify a "
                         "valid capacity provider and try again.")
        if sum(1 for i in items if i["base"] > 0) > 1:
            raise Reject("InvalidParameterException",
                         "The specified capacity provider strategy cannot contain more than one capacity provider "
                         "with a base value greater than 0.")
        if all(i["weight"] == 0 for i in items):
            raise Reject("InvalidParameterException",
                         "The specified capacity provider strategy must contain at least one capacity provider with "
                         "a weight value greater than 0.")

    def place_provider(self, rec: dict) -> str | None:
        """Which provider ECS puts the next task on: the base first, then by weight (None: a launch type)."""
        strategy = rec.get("strategy") or []
        if not strategy:
            return None
        live = [t.get("provider") for t in rec["tasks"] if t["stop_at"] is None]
        for item in strategy:
            if item["base"] > live.count(item["capacityProvider"]):
                return item["capacityProvider"]
        base = {i["capacityProvider"]: i["base"] for i in strategy}
        weighted = [i for i in strategy if i["weight"] > 0]
        # The provider that stays furthest below its share of the tasks beyond the bases with one more.
        return min(weighted, key=lambda i: (max(live.count(i["capacityProvider"]) - base[i["capacityProvider"]], 0) + 1)
                   / i["weight"])["capacityProvider"]

    def pre_ecs_PutClusterCapacityProviders(self, ctx: Ctx):
        """AWS refuses to take away a provider a service of the cluster still uses (moto does not check)."""
        cluster = self.cluster_name(ctx.json.get("cluster"))
        kept = set(ctx.json.get("capacityProviders") or [])
        for rec in self.services.values():
            if self.cluster_name(rec["cluster"]) != cluster or self.svc_status(rec, ctx.now) == "INACTIVE":
                continue
            if any(i["capacityProvider"] not in kept for i in rec.get("strategy") or []):
                raise Reject("ResourceInUseException", "The specified capacity provider is in use and cannot be removed.")
        return None

    def pre_ecs_RegisterTaskDefinition(self, ctx: Ctx):
        td = ctx.json
        if "FARGATE" not in (td.get("requiresCompatibilities") or []):
            return None
        if td.get("networkMode") != "awsvpc":
            raise Reject("ClientException", "Fargate only supports network mode \u2018awsvpc\u2019.")
        if td.get("cpu") is None:
            raise Reject("ClientException", "Fargate requires that 'cpu' be defined at the task level.")
        if td.get("memory") is None:
            raise Reject("ClientException", "Fargate requires that 'memory' be defined at the task level.")
        cpu, mem = parse_cpu(td.get("cpu")), parse_memory(td.get("memory"))
        if cpu is None or mem is None or not fargate_pair_ok(cpu, mem):
            raise Reject("ClientException", "No Fargate configuration exists for given values: "
                                            f"{td.get('cpu')} CPU, {td.get('memory')} memory. See the Amazon ECS "
                                            "documentation for the valid values.")
        for c in td.get("containerDefinitions") or []:
            if ((c.get("logConfiguration") or {}).get("logDriver") == "awslogs") and not td.get("executionRoleArn"):
                raise Reject("ClientException",
                             "Fargate requires task definition to have execution role ARN to support log driver awslogs.")
        # A mount point names a volume the task declares; on Fargate a volume is task storage (no host path,
        # no tmpfs: linuxParameters.tmpfs is refused).
        volumes = {v.get("name") for v in td.get("volumes") or []}
        for c in td.get("containerDefinitions") or []:
            for m in c.get("mountPoints") or []:
                if m.get("sourceVolume") not in volumes:
                    raise Reject("ClientException", f"Invalid 'mountPoints' for container '{c.get('name')}': "
                                                    f"Unknown volume '{m.get('sourceVolume')}'.")
            if (c.get("linuxParameters") or {}).get("tmpfs"):
                raise Reject("ClientException", "Fargate compatible task definitions do not support tmpfs.")
        for v in td.get("volumes") or []:
            if (v.get("host") or {}).get("sourcePath"):
                raise Reject("ClientException", "Fargate compatible task definitions do not support sourcePath.")
        for c in td.get("containerDefinitions") or []:
            self.check_container_options(c)
        return None

    # ECS's ranges for a container's health check, which moto stores unchecked.
    HEALTH_CHECK_RANGES = (("interval", 5, 300), ("timeout", 2, 60), ("retries", 1, 10), ("startPeriod", 0, 300))

    def check_container_options(self, c: dict):
        hc = c.get("healthCheck")
        if hc is not None:
            cmd = hc.get("command") or []
            if not cmd or cmd[0] not in ("CMD", "CMD-SHELL", "NONE"):
                raise Reject("ClientException", "Invalid 'healthCheck' command: it must start with CMD, CMD-SHELL "
                                                "or NONE.")
            for key, low, high in self.HEALTH_CHECK_RANGES:
                value = hc.get(key)
                if value is not None and not low <= int(value) <= high:
                    raise Reject("ClientException", f"Invalid 'healthCheck' setting for container '{c.get('name')}': "
                                                    f"{key} must be between {low} and {high}.")
        stop = c.get("stopTimeout")
        if stop is not None and not 2 <= int(stop) <= 120:
            raise Reject("ClientException", f"Invalid 'stopTimeout' for container '{c.get('name')}': Fargate takes "
                                            "2 to 120 seconds.")
        ports = [m.get("containerPort") for m in c.get("portMappings") or []]
        if len(ports) != len(set(ports)):
            raise Reject("ClientException", f"Invalid 'portMappings' for container '{c.get('name')}': a container "
                                            "port is mapped twice.")

    def post_ecs_RegisterTaskDefinition(self, ctx: Ctx, resp: Response):
        td = json.loads(resp.body or b"{}").get("taskDefinition") or {}
        if td.get("taskDefinitionArn"):
            self.taskdefs[td["taskDefinitionArn"]] = td

    def pre_ecs_CreateService(self, ctx: Ctx):
        req = ctx.json
        name, cluster = req.get("serviceName"), req.get("cluster")
        now = ctx.now
        # 7: idempotency by name
        rec = self.find_service(cluster, name)
        existing = rec is not None and self.svc_status(rec, now) in ("ACTIVE", "DRAINING")
        if rec is None:
            try:
                doc = self.call_json(ctx, "ecs", "DescribeServices", {"cluster": cluster or "default", "services": [name]})
                existing = any(s.get("status") in ("ACTIVE", "DRAINING") for s in doc.get("services") or [])
            except UpstreamError:
                existing = False
        if existing:
            token = req.get("clientToken")
            fingerprint = json.dumps({k: v for k, v in req.items() if k != "clientToken"}, sort_keys=True)
            if (rec is not None and token and rec["client_token"] == token and now - rec["created"] < self.d("client_token_window_s")
                    and rec["fingerprint"] == fingerprint and self.svc_status(rec, now) == "ACTIVE"):
                doc = self.call_json(ctx, "ecs", "DescribeServices", {"cluster": cluster or "default", "services": [name]})
                svc = (doc.get("services") or [None])[0]
                if svc:
                    self.apply_view(ctx, svc)
                    body = json.dumps({"service": svc}).encode()
                    return Response(200, [("Content-Type", "application/x-amz-json-1.1"),
                                          ("x-amzn-RequestId", str(uuid.uuid4()))], body, injected=True)
            raise Reject("InvalidParameterException", "Creation of service was not idempotent.")
        self.check_strategy(ctx, cluster, self.strategy_of(req.get("capacityProviderStrategy")))
        self.check_service_settings(req)
        td = self.resolve_taskdef(ctx, req.get("taskDefinition", ""))
        ctx.extra["taskdef"] = td
        # 6: target groups
        self.check_target_groups(ctx, req.get("loadBalancers"), td)
        self.check_deployment_strategy(ctx, req, None)
        # 17: IAM propagation
        for key in ("taskRoleArn", "executionRoleArn"):
            arn = td.get(key)
            if not arn:
                continue
            created = self.roles.get(arn.split("/")[-1])
            if created is not None and now < created + self.d("iam_propagation_s"):
                raise Reject("InvalidParameterException", IAM_ROLE_MESSAGE.format(arn=arn))
        return None

    @staticmethod
    def check_service_settings(req: dict):
        """The deployment bounds and grace period as ECS checks them (moto takes any)."""
        dc = req.get("deploymentConfiguration") or {}
        low, high = dc.get("minimumHealthyPercent"), dc.get("maximumPercent")
        if low is not None and not 0 <= int(low) <= 100:
            raise Reject("InvalidParameterException", "minimumHealthyPercent must be between 0 and 100.")
        if high is not None and int(high) < 1:
            raise Reject("InvalidParameterException", "maximumPercent must be greater than 0.")
        grace = req.get("healthCheckGracePeriodSeconds")
        if grace is not None and not 0 <= int(grace) <= 2147483647:
            raise Reject("InvalidParameterException", "healthCheckGracePeriodSeconds must be between 0 and 2147483647.")

    # What CreateService takes that moto neither keeps nor returns; UpdateService changes it.
    SERVICE_SETTINGS = ("deploymentConfiguration", "healthCheckGracePeriodSeconds", "enableExecuteCommand")

    def keep_settings(self, rec: dict, req: dict):
        settings = rec.setdefault("settings", {"enableExecuteCommand": False})
        for key in self.SERVICE_SETTINGS:
            if key == "deploymentConfiguration" and key in req:
                settings[key] = self.merged_dc(rec, req)
            elif key in req:
                settings[key] = req[key]

    def post_ecs_CreateService(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        svc = doc.get("service") or {}
        arn = svc.get("serviceArn")
        if not arn:
            return
        req = ctx.json
        old = self.services.get(arn)
        if old is not None:  # replaced an INACTIVE one: its task ENIs keep lingering
            self.eni_linger.append({"until": (old["drain_end"] or ctx.now) + self.d("task_eni_linger_s"), "sgs": set(old["sgs"]),
                                    "subnets": set(old["subnets"]), "vpc": old.get("vpc"), "public": old["public_ip"],
                                    "why": f"ECS service {old['name']} (inactive)",
                                    "description": f"arn:aws:ecs:us-east-1:123456789012:attachment/{old['name']}"})
        net = (svc.get("networkConfiguration") or req.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        tgs = []
        for spec in svc.get("loadBalancers") or req.get("loadBalancers") or []:
            if spec.get("targetGroupArn"):
                tgs.append({"arn": spec["targetGroupArn"], "container": spec.get("containerName"),
                            "port": spec.get("containerPort") or 80})
        rec = {
            "arn": arn, "name": svc.get("serviceName") or req.get("serviceName"),
            "cluster": svc.get("clusterArn") or req.get("cluster") or "default",
            "created": ctx.now, "deleted_at": None, "drain_end": None,
            "desired": int(svc.get("desiredCount", req.get("desiredCount", 0)) or 0),
            "subnets": list(net.get("subnets") or []), "sgs": list(net.get("securityGroups") or []),
            "public_ip": net.get("assignPublicIp") == "ENABLED", "tgs": tgs,
            "taskdef": svc.get("taskDefinition"), "client_token": req.get("clientToken"),
            "fingerprint": json.dumps({k: v for k, v in req.items() if k != "clientToken"}, sort_keys=True),
            "tasks": [], "rr": 0, "completed_at": None, "vpc": None,
            "deploy_started": ctx.now, "previous_taskdef": None, "rollback_reason": None,
            "dep_id": next((d.get("id") for d in svc.get("deployments") or [] if d.get("id")),
                           f"ecs-svc/{random.randrange(10 ** 18, 10 ** 19)}"),
            "dep_created": ctx.now, "dep_failed": 0, "old_deps": [], "events": [],
            "strategy": self.strategy_of(req.get("capacityProviderStrategy")),
        }
        if rec["subnets"]:
            try:
                info = self.subnet_info(ctx, rec["subnets"][0])
                rec["vpc"] = info["vpc"] if info else None
            except UpstreamError:
                pass
        self.keep_settings(rec, req)
        rec["lb_specs"] = json.loads(json.dumps(svc.get("loadBalancers") or req.get("loadBalancers") or []))
        if self.blue_green_spec(rec) is not None:  # its tasks serve from the primary target group first
            rec["serving_tg"] = rec["task_tg"] = rec["lb_specs"][0]["targetGroupArn"]
        self.new_revision(rec, ctx.now)
        self.new_service_deployment(rec, ctx.now, None)
        self.services[arn] = rec
        self.reconcile(ctx, rec, ctx.now)
        self.apply_view(ctx, svc)
        resp.set_json(doc)

    def blue_green_spec(self, rec: dict):
        """The load balancer entry ECS shifts traffic with, when the service's strategy is not ROLLING."""
        dc = (rec.get("settings") or {}).get("deploymentConfiguration") or {}
        if (dc.get("strategy") or "ROLLING") == "ROLLING":
            return None
        return next((s for s in rec.get("lb_specs") or [] if (s.get("advancedConfiguration") or {}).get("productionListenerRule")), None)

    def check_target_groups(self, ctx: Ctx, specs, td: dict):
        """ECS refuses a target group no load balancer uses, or one of another target type than awsvpc needs."""
        for spec in specs or []:
            arn = spec.get("targetGroupArn")
            if not arn:
                continue
            info = self.tg_info(ctx, arn)
            if info is None:
                continue
            if not info["lbs"]:
                raise Reject("InvalidParameterException",
                             f"The target group with targetGroupArn {arn} does not have an associated load balancer.")
            if td.get("networkMode") == "awsvpc" and info["type"] != "ip":
                raise Reject("InvalidParameterException",
                             f"The provided target group {arn} has target type {info['type']}, which is incompatible "
                             "with the awsvpc network mode specified in the task definition.")

    def pre_ecs_UpdateService(self, ctx: Ctx):
        self.check_service_settings(ctx.json)
        if ctx.json.get("loadBalancers") is not None:
            self.check_target_groups(ctx, ctx.json["loadBalancers"], {"networkMode": "awsvpc"})
        rec = self.find_service(ctx.json.get("cluster"), (ctx.json.get("service") or "").split("/")[-1])
        if rec is not None and self.svc_status(rec, ctx.now) != "ACTIVE":
            raise Reject("ServiceNotActiveException", "Service was not ACTIVE.")
        if "deploymentConfiguration" in ctx.json or ctx.json.get("loadBalancers") is not None:
            self.check_deployment_strategy(ctx, ctx.json, rec)
        wanted = ctx.json.get("capacityProviderStrategy")
        if rec is not None and wanted is not None and self.strategy_of(wanted) != rec.get("strategy", []):
            # AWS: moving between the launch type and a strategy, or changing a strategy, takes a new deployment.
            if not ctx.json.get("forceNewDeployment"):
                raise Reject("InvalidParameterException",
                             "When switching from launch type to capacity provider strategy on an existing service, or "
                             "making a change to a capacity provider strategy on a service that is already using one, "
                             "you must force a new deployment.")
            self.check_strategy(ctx, ctx.json.get("cluster"), self.strategy_of(wanted))
        return None

    def post_ecs_UpdateService(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        svc = doc.get("service") or {}
        rec = self.services.get(svc.get("serviceArn"))
        if rec is None:
            return
        req = ctx.json
        if req.get("capacityProviderStrategy") is not None:
            rec["strategy"] = self.strategy_of(req["capacityProviderStrategy"])
        self.svc_view(ctx, rec)  # settles the current deployment's rollout state first
        new_td = req.get("taskDefinition")
        # AWS: a changed network configuration (subnets, groups, public IP) starts a new deployment
        # too; moto only stores it. The old tasks' interfaces stay in their subnets until released.
        net = (req.get("networkConfiguration") or {}).get("awsvpcConfiguration")
        old_net = (sorted(rec["subnets"]), sorted(rec["sgs"]), rec["public_ip"])
        if net:
            rec["subnets"] = list(net.get("subnets") or rec["subnets"])
            rec["sgs"] = list(net.get("securityGroups") or rec["sgs"])
            rec["public_ip"] = net.get("assignPublicIp") == "ENABLED"
        net_changed = (sorted(rec["subnets"]), sorted(rec["sgs"]), rec["public_ip"]) != old_net
        # AWS moves the service to the new target groups in a new deployment (moto only stores them):
        # new tasks register there, the old ones leave the old groups as they stop.
        if req.get("loadBalancers") is not None:
            rec["tgs"] = [{"arn": spec["targetGroupArn"], "container": spec.get("containerName"),
                           "port": spec.get("containerPort") or 80}
                          for spec in req["loadBalancers"] if spec.get("targetGroupArn")]
            svc["loadBalancers"] = req["loadBalancers"]
            rec["lb_specs"] = json.loads(json.dumps(req["loadBalancers"]))
        self.keep_settings(rec, req)
        if (new_td and svc.get("taskDefinition") != rec["taskdef"]) or req.get("forceNewDeployment") or net_changed:
            self.supersede(ctx, rec, ctx.now)
            source = rec.get("revision")
            if rec["completed_at"] is not None:
                rec["previous_taskdef"], rec["previous_revision"] = rec["taskdef"], source
            self.new_deployment(rec, ctx.now, svc.get("taskDefinition"))
            old_tasks = [t for t in rec["tasks"] if t["stop_at"] is None]
            spec = self.blue_green_spec(rec)
            rec["task_tg"] = None
            self.new_revision(rec, ctx.now)
            sd = self.new_service_deployment(rec, ctx.now, source)
            if spec is not None:  # the old tasks keep serving; a second full task set starts beside them
                self.bg_start(ctx, rec, ctx.now, sd, spec, source)
            else:
                self.stop_tasks(ctx, rec, old_tasks, ctx.now)
                for task in old_tasks:  # the routing gap check's stand-in for minimumHealthyPercent (see there)
                    task["rolled"] = True
            rec["rollback_reason"] = None
            rec["rollout_failed"] = False
            if net_changed:
                gone = max([ctx.now] + [t["gone_at"] for t in old_tasks if t.get("gone_at") is not None])
                self.eni_linger.append({"until": gone + self.d("task_eni_linger_s"), "sgs": set(old_net[1]),
                                        "subnets": set(old_net[0]), "vpc": rec.get("vpc"), "public": old_net[2],
                                        "why": f"ECS service {rec['name']} (tasks of the previous network)",
                                        "description": f"arn:aws:ecs:us-east-1:123456789012:attachment/{rec['name']}"})
        if "desiredCount" in req:
            rec["desired"] = int(req["desiredCount"])
        self.reconcile(ctx, rec, ctx.now)
        self.apply_view(ctx, svc)
        resp.set_json(doc)

    def post_ecs_DeleteService(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        svc = doc.get("service") or {}
        rec = self.services.get(svc.get("serviceArn"))
        if rec is None or rec["deleted_at"] is not None:
            return
        now = ctx.now
        if rec.get("bg") is not None:
            self.svc_view(ctx, rec)  # a blue/green-type deployment moved on until now
        sd = self.current_sd(rec)
        if sd is not None and sd["status"] in ("PENDING", "IN_PROGRESS"):  # a deployment under way ends with it
            sd.update(status="STOPPED", stopped=now, updated=now, reason="Service deployment stopped: the service was deleted.")
        rec["bg"] = None
        rec["desired"] = 0
        self.stop_tasks(ctx, rec, [t for t in rec["tasks"] if t["stop_at"] is None], now)
        dereg = max([self.dereg_delay(ctx, t["arn"]) for t in rec["tgs"]] or [0.0])
        rec["deleted_at"] = now
        rec["drain_end"] = max([now + dereg] + [t["gone_at"] for t in rec["tasks"] if t["gone_at"] is not None])
        self.apply_view(ctx, svc)
        resp.set_json(doc)

    def post_ecs_DescribeServices(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        changed = False
        for svc in doc.get("services") or []:
            changed = self.apply_view(ctx, svc) or changed
        if changed:
            resp.set_json(doc)

    def post_ecs_ListServices(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        arns = doc.get("serviceArns") or []
        kept = [a for a in arns if a not in self.services or self.svc_status(self.services[a], ctx.now) != "INACTIVE"]
        if len(kept) != len(arns):
            doc["serviceArns"] = kept
            resp.set_json(doc)

    CLUSTER_SETTINGS = {"containerInsights": ("enabled", "enhanced", "disabled")}

    def pre_ecs_UpdateClusterSettings(self, ctx: Ctx):
        """moto 5.2.5 has no UpdateClusterSettings (500 NotImplemented): served here, checked as AWS does; the
        settings it sets show in DescribeClusters (post_ecs_DescribeClusters)."""
        settings = ctx.json.get("settings") or []
        if not settings:
            raise Reject("InvalidParameterException", "Settings cannot be empty.")
        for setting in settings:
            allowed = self.CLUSTER_SETTINGS.get(setting.get("name"))
            if allowed is None or setting.get("value") not in allowed:
                raise Reject("InvalidParameterException",
                             f"Invalid setting {setting.get('name')}={setting.get('value')}: "
                             f"containerInsights accepts {', '.join(self.CLUSTER_SETTINGS['containerInsights'])}.")
        name = self.cluster_name(ctx.json.get("cluster"))
        doc = self.call_json(ctx, "ecs", "DescribeClusters",
                             {"clusters": [name], "include": ["SETTINGS", "TAGS"]})
        cluster = next((c for c in doc.get("clusters") or [] if c.get("status") == "ACTIVE"), None)
        if cluster is None:
            raise Reject("ClusterNotFoundException", "Cluster not found.")
        changed = {s["name"]: s["value"] for s in settings}

        def commit():
            self.cluster_settings.setdefault(cluster["clusterArn"], {}).update(changed)
        ctx.extra["commit"] = commit
        merged = {s.get("name"): s.get("value") for s in cluster.get("settings") or []}
        merged.update(self.cluster_settings.get(cluster["clusterArn"], {}), **changed)
        cluster["settings"] = [{"name": k, "value": v} for k, v in merged.items()]
        body = json.dumps({"cluster": cluster}).encode()
        return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        body, injected=True)

    def post_ecs_DescribeClusters(self, ctx: Ctx, resp: Response):
        """The settings UpdateClusterSettings changed, over what moto stored at CreateCluster."""
        if not self.cluster_settings:
            return None
        doc = json.loads(resp.body or b"{}")
        for cluster in doc.get("clusters") or []:
            changed = self.cluster_settings.get(cluster.get("clusterArn"))
            if changed:
                merged = {s.get("name"): s.get("value") for s in cluster.get("settings") or []}
                merged.update(changed)
                cluster["settings"] = [{"name": k, "value": v} for k, v in merged.items()]
        resp.set_json(doc)
        return resp

    def pre_ecs_DeleteCluster(self, ctx: Ctx):
        cluster = self.cluster_name(ctx.json.get("cluster"))
        for rec in self.services.values():
            if self.cluster_name(rec["cluster"]) == cluster and self.svc_status(rec, ctx.now) in ("ACTIVE", "DRAINING"):
                raise Reject("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
        try:
            arns = self.call_json(ctx, "ecs", "ListServices", {"cluster": cluster}).get("serviceArns") or []
        except UpstreamError:
            return None
        unknown = [a for a in arns if a not in self.services]
        if unknown:
            doc = self.call_json(ctx, "ecs", "DescribeServices", {"cluster": cluster, "services": unknown[:10]})
            if any(s.get("status") in ("ACTIVE", "DRAINING") for s in doc.get("services") or []):
                raise Reject("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
        return None

    # =========================================================================================
    # DynamoDB (3)

    @staticmethod
    def table_name(value) -> str:
        return str(value or "").split("/")[-1]

    def table_status(self, name: str, now: float):
        t = self.tables.get(name)
        if t is None:
            return None
        if t["deleted"] is not None:
            return "DELETING" if now < t["deleted"] + self.d("table_deleting_s") else None
        return "CREATING" if now < t["created"] + self.d("table_creating_s") else "ACTIVE"

    def _not_found(self):
        return Reject("ResourceNotFoundException", "Requested resource not found")

    def pre_dynamodb_CreateTable(self, ctx: Ctx):
        name = self.table_name(ctx.json.get("TableName"))
        if self.table_status(name, ctx.now) == "DELETING":
            raise Reject("ResourceInUseException", f"Table already exists: {name}")
        return None

    def post_dynamodb_CreateTable(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        desc = doc.get("TableDescription") or {}
        name = desc.get("TableName") or self.table_name(ctx.json.get("TableName"))
        self.tables[name] = {"created": ctx.now, "deleted": None, "desc": desc}
        self._rewrite_table(desc, ctx.now)
        resp.set_json(doc)

    def _rewrite_table(self, desc: dict, now: float):
        status = self.table_status(desc.get("TableName", ""), now)
        if status:
            desc["TableStatus"] = status
            if status == "CREATING":
                for gsi in desc.get("GlobalSecondaryIndexes") or []:
                    gsi["IndexStatus"] = "CREATING"

    def pre_dynamodb_TagResource(self, ctx: Ctx):
        """DynamoDB's TagResource overwrites the value of a key the table has; the emulator adds a
        second tag of the same key. The keys go first, so the one sent is the one kept."""
        keys = [t.get("Key") for t in ctx.json.get("Tags") or []]
        if keys and ctx.json.get("ResourceArn"):
            try:
                self.call_json(ctx, "dynamodb", "UntagResource", {"ResourceArn": ctx.json["ResourceArn"], "TagKeys": keys})
            except UpstreamError:
                pass  # the call itself then answers as AWS would (an unknown table)
        return None

    def pre_dynamodb_DescribeTable(self, ctx: Ctx):
        name = self.table_name(ctx.json.get("TableName"))
        if self.table_status(name, ctx.now) == "DELETING":
            desc = dict(self.tables[name]["desc"] or {"TableName": name})
            desc["TableStatus"] = "DELETING"
            body = json.dumps({"Table": desc}).encode()
            return Response(200, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", str(uuid.uuid4())),
                                  ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))], body, injected=True)
        return None

    def post_dynamodb_DescribeTable(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        desc = doc.get("Table") or {}
        name = desc.get("TableName")
        self._apply_sse(desc)
        if name in self.tables and self.tables[name]["deleted"] is None:
            self.tables[name]["desc"] = json.loads(json.dumps(desc))
            self._rewrite_table(desc, ctx.now)
        resp.set_json(doc)

    def pre_dynamodb_DeleteTable(self, ctx: Ctx):
        name = self.table_name(ctx.json.get("TableName"))
        status = self.table_status(name, ctx.now)
        if status == "CREATING":
            raise Reject("ResourceInUseException",
                         f"Attempt to change a resource which is still in use: Table is being created: {name}")
        if status == "DELETING":
            raise Reject("ResourceInUseException",
                         f"Attempt to change a resource which is still in use: Table is being deleted: {name}")
        return None

    def post_dynamodb_UpdateTable(self, ctx: Ctx, resp: Response):
        """moto ignores SSESpecification: the key it sets shows in DescribeTable from here on (on AWS the
        table stays ACTIVE while DynamoDB re-encrypts; the status shows ENABLED at once here)."""
        spec = ctx.json.get("SSESpecification")
        if spec is None:
            return None
        name = self.table_name(ctx.json.get("TableName"))
        if spec.get("Enabled") and spec.get("SSEType", "KMS") == "KMS":
            key = spec.get("KMSMasterKeyId")
            if key and not key.startswith("arn:"):
                key = f"arn:aws:kms:{ctx.region}:123456789012:key/{key}"
            self.table_sse[name] = {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": key}
        else:
            self.table_sse[name] = None
        doc = json.loads(resp.body or b"{}")
        self._apply_sse(doc.get("TableDescription") or {})
        resp.set_json(doc)
        return resp

    def _apply_sse(self, desc: dict):
        name = desc.get("TableName")
        if name in self.table_sse:
            if self.table_sse[name] is None:
                desc.pop("SSEDescription", None)
            else:
                desc["SSEDescription"] = dict(self.table_sse[name])

    def post_dynamodb_DeleteTable(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        desc = doc.get("TableDescription") or {}
        name = desc.get("TableName") or self.table_name(ctx.json.get("TableName"))
        entry = self.tables.setdefault(name, {"created": 0.0, "deleted": None, "desc": desc})
        entry["desc"] = json.loads(json.dumps(desc))
        entry["deleted"] = ctx.now
        self.table_sse.pop(name, None)
        desc["TableStatus"] = "DELETING"
        resp.set_json(doc)

    def post_dynamodb_ListTables(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        if doc.get("LastEvaluatedTableName"):
            return
        names = list(doc.get("TableNames") or [])
        start = ctx.json.get("ExclusiveStartTableName") or ""
        extra = [n for n in self.tables if self.table_status(n, ctx.now) == "DELETING" and n not in names and n > start]
        if extra:
            doc["TableNames"] = sorted(names + extra)
            resp.set_json(doc)

    def _check_tables_ready(self, ctx: Ctx, names):
        for name in names:
            if self.table_status(self.table_name(name), ctx.now) in ("CREATING", "DELETING"):
                raise self._not_found()

    def dynamodb_table_check(self, ctx: Ctx):
        """Data-plane calls on a CREATING/DELETING table fail as on AWS; so do changes to a CREATING one."""
        op = ctx.action
        if op in DDB_TABLE_OPS:
            return self._check_tables_ready(ctx, [ctx.json.get("TableName")])
        if op in DDB_MULTI_OPS:
            names = list((ctx.json.get("RequestItems") or {}).keys())
            for item in ctx.json.get("TransactItems") or []:
                for v in item.values():
                    if isinstance(v, dict) and v.get("TableName"):
                        names.append(v["TableName"])
            return self._check_tables_ready(ctx, names)
        if op in DDB_CHANGE_OPS:
            name = self.table_name(ctx.json.get("TableName"))
            status = self.table_status(name, ctx.now)
            if status == "CREATING":
                raise Reject("ResourceInUseException",
                             f"Attempt to change a resource which is still in use: Table is being created: {name}")
            if status == "DELETING":
                raise self._not_found()
        return None

    # =========================================================================================
    # IAM (17), CloudWatch Logs (12)

    def post_iam_CreateRole(self, ctx: Ctx, resp: Response):
        name = ctx.params.get("RoleName")
        if name:
            self.roles[name] = ctx.now

    def post_iam_DeleteRole(self, ctx: Ctx, resp: Response):
        self.roles.pop(ctx.params.get("RoleName"), None)

    # ---- KMS keys of log groups -----------------------------------------------------------------

    def logs_may_use(self, ctx: Ctx, key: str) -> bool:
        """Whether the key exists, is enabled, and its policy lets CloudWatch Logs of the region encrypt with
        it (an Allow of kms:Encrypt, kms:Decrypt and kms:GenerateDataKey to logs.<region>.amazonaws.com)."""
        try:
            meta = self.call_json(ctx, "kms", "DescribeKey", {"KeyId": key}).get("KeyMetadata") or {}
            policy = self.call_json(ctx, "kms", "GetKeyPolicy", {"KeyId": key, "PolicyName": "default"}).get("Policy")
        except UpstreamError:
            return False
        if meta.get("KeyState") != "Enabled":
            return False
        try:
            doc = json.loads(policy or "{}")
        except ValueError:
            return False
        statements = doc.get("Statement") or []
        statements = statements if isinstance(statements, list) else [statements]
        service = f"logs.{ctx.region}.amazonaws.com"

        def listed(v):
            return v if isinstance(v, list) else [v] if v is not None else []

        def allows(action: str) -> bool:
            for st in statements:
                principal = st.get("Principal")
                who = principal == "*" or (isinstance(principal, dict) and service in listed(principal.get("Service")))
                acts = [a.lower() for a in listed(st.get("Action"))]
                if st.get("Effect") == "Allow" and who and any(fnmatch.fnmatchcase(action, a) for a in acts):
                    return True
            return False
        return all(allows(a) for a in ("kms:encrypt", "kms:decrypt", "kms:generatedatakey"))

    def _refuse_key(self, ctx: Ctx, name: str, key: str):
        if not self.logs_may_use(ctx, key):
            arn = f"arn:aws:logs:{ctx.region}:123456789012:log-group:{name}"
            raise Reject("AccessDeniedException",
                         f"The specified KMS key does not exist or is not allowed to be used with Arn '{arn}'")

    def post_kms_CreateKey(self, ctx: Ctx, resp: Response):
        """moto leaves KeyUsage (and KeySpec) null when CreateKey does not name them; AWS defaults them."""
        doc = json.loads(resp.body or b"{}")
        meta = doc.get("KeyMetadata") or {}
        meta["KeyUsage"] = meta.get("KeyUsage") or "ENCRYPT_DECRYPT"
        meta["KeySpec"] = meta.get("KeySpec") or "SYMMETRIC_DEFAULT"
        resp.set_json(doc)
        return resp

    post_kms_DescribeKey = post_kms_CreateKey

    def pre_logs_CreateLogGroup(self, ctx: Ctx):
        key = ctx.json.get("kmsKeyId")
        if key:
            self._refuse_key(ctx, ctx.json.get("logGroupName", ""), key)
        return None

    def _log_group_exists(self, ctx: Ctx, name: str):
        groups = self.call_json(ctx, "logs", "DescribeLogGroups", {"logGroupNamePrefix": name}).get("logGroups") or []
        if not any(g.get("logGroupName") == name for g in groups):
            raise Reject("ResourceNotFoundException", "The specified log group does not exist.")

    def _logs_ok(self, ctx: Ctx, commit) -> Response:
        ctx.extra["commit"] = commit
        return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        b"{}", injected=True)

    def pre_logs_AssociateKmsKey(self, ctx: Ctx):
        """moto 5.2.5 has no AssociateKmsKey: served here, refused as AWS does when the key's policy does not
        let CloudWatch Logs use it; the key shows in DescribeLogGroups (post_logs_DescribeLogGroups)."""
        name, key = ctx.json.get("logGroupName", ""), ctx.json.get("kmsKeyId", "")
        self._log_group_exists(ctx, name)
        self._refuse_key(ctx, name, key)
        return self._logs_ok(ctx, lambda: self.log_group_keys.__setitem__(name, key))

    def pre_logs_DisassociateKmsKey(self, ctx: Ctx):
        name = ctx.json.get("logGroupName", "")
        self._log_group_exists(ctx, name)
        return self._logs_ok(ctx, lambda: self.log_group_keys.__setitem__(name, None))

    def post_logs_DescribeLogGroups(self, ctx: Ctx, resp: Response):
        if not self.log_group_keys:
            return None
        doc = json.loads(resp.body or b"{}")
        for group in doc.get("logGroups") or []:
            name = group.get("logGroupName")
            if name in self.log_group_keys:
                if self.log_group_keys[name] is None:
                    group.pop("kmsKeyId", None)
                else:
                    group["kmsKeyId"] = self.log_group_keys[name]
        resp.set_json(doc)
        return resp

    def post_logs_DeleteLogGroup(self, ctx: Ctx, resp: Response):
        self.log_group_keys.pop(ctx.json.get("logGroupName"), None)

    def pre_logs_PutRetentionPolicy(self, ctx: Ctx):
        days = ctx.json.get("retentionInDays")
        if days not in RETENTION_DAYS:
            raise Reject("InvalidParameterException",
                         f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy "
                         f"constraint: Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]")
        return None

    # ---- what the containers write (awslogs driver) -------------------------------------------

    def container_lines(self, ctx: Ctx, rec: dict, task: dict) -> list:
        """The log lines an nginx-like container writes, as (time, message): start-up, the load
        balancer's first health checks (the ones that make a target healthy, or unhealthy for a
        failing image), and the shutdown."""
        if task["run_at"] is None:
            return []
        stamp = lambda t: time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(t))  # noqa: E731
        clf = lambda t: time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))  # noqa: E731
        t0 = task["run_at"]
        lines = [
            (t0, "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"),
            (t0, "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/"),
            (t0, "/docker-entrypoint.sh: Configuration complete; ready for start up"),
            (t0, f"{stamp(t0)} [notice] 1#1: using the \"epoll\" event method"),
            (t0, f"{stamp(t0)} [notice] 1#1: start worker processes"),
        ]
        tg = rec["tgs"][0] if rec["tgs"] else None
        info = self.tg_info(ctx, tg["arn"]) if tg else None
        if info is not None and info["lbs"]:
            fails = self.image_fails(ctx, task["taskdef"])
            interval = info["interval"] * float(self.cfg["time_scale"])
            start = max(t0, max(self.lb_active_at(lb) for lb in info["lbs"]))
            status = 502 if fails else 200
            for k in range(1, (2 if fails else info["threshold"]) + 1):
                at = start + k * interval
                lines.append((at, f'10.0.0.{(self.task_seq % 200) + 20} - - [{clf(at)}] "GET / HTTP/1.1" {status} '
                                  f'{157 if fails else 615} "-" "ELB-HealthChecker/2.0" "-"'))
        if task["stop_at"] is not None and task["stop_at"] >= t0:
            t1 = task["stop_at"]
            lines.append((t1, f"{stamp(t1)} [notice] 1#1: signal 3 (SIGQUIT) received, shutting down"))
            lines.append((t1, f"{stamp(t1)} [notice] 29#29: gracefully shutting down"))
        end = task["stop_at"] if task["stop_at"] is not None else float("inf")
        return [(t, m) for t, m in lines if t <= ctx.now and (t <= end or "shutting down" in m)]

    def write_container_logs(self, ctx: Ctx):
        """Before a read of CloudWatch Logs: put what the overlay's running tasks have written by now
        in their awslogs streams `<prefix>/<container>/<task-id>`, as the awslogs driver would."""
        if not self.cfg.get("container_logs"):
            return
        for rec in self.services.values():
            self.svc_view(ctx, rec)
            for task in rec["tasks"]:
                lines = self.container_lines(ctx, rec, task)
                done = task.setdefault("logged", 0)
                if len(lines) <= done:
                    continue
                try:
                    td = self.resolve_taskdef(ctx, task["taskdef"])
                    container = next(iter(td.get("containerDefinitions") or []), {})
                    opts = (container.get("logConfiguration") or {}).get("options") or {}
                    group, prefix = opts.get("awslogs-group"), opts.get("awslogs-stream-prefix")
                    if not group or not prefix:
                        task["logged"] = len(lines)
                        continue
                    stream = f"{prefix}/{container.get('name', 'app')}/{task['id']}"
                    if not task.get("stream"):
                        try:
                            self.call_json(ctx, "logs", "CreateLogStream", {"logGroupName": group, "logStreamName": stream})
                        except UpstreamError as e:
                            if e.code != "ResourceAlreadyExistsException":
                                raise
                        task["stream"] = stream
                    events = [{"timestamp": int(t * 1000), "message": m} for t, m in lines[done:]]
                    self.call_json(ctx, "logs", "PutLogEvents",
                                   {"logGroupName": group, "logStreamName": stream, "logEvents": events})
                    task["logged"] = len(lines)
                except UpstreamError:
                    pass  # the group is gone (or not there yet): nothing to write to

    def pre_logs_FilterLogEvents(self, ctx: Ctx):
        self.write_container_logs(ctx)
        # AWS interleaves the streams by time whatever `interleaved` says (ignored since 2019); moto
        # only when asked, else it returns one stream after the other.
        if not ctx.json.get("interleaved"):
            ctx.set_json_body(dict(ctx.json, interleaved=True))
        return None

    def pre_logs_GetLogEvents(self, ctx: Ctx):
        self.write_container_logs(ctx)
        return None


    # =========================================================================================
    # ACM (19-21) and the listeners that use certificates (22)

    @staticmethod
    def acm_record(account: str, domain: str):
        """The validation CNAME of a domain: the same for every certificate of the account, as on AWS."""
        base = domain[2:] if domain.startswith("*.") else domain
        h1 = hashlib.md5(f"name:{account}:{base.lower()}".encode()).hexdigest()
        h2 = hashlib.md5(f"value:{account}:{base.lower()}".encode()).hexdigest()
        letters = "".join(chr(97 + int(c, 16) % 26) for c in h2[:10])
        return dns_norm(f"_{h1}.{base}"), f"_{h2}.{letters}.acm-validations.aws."

    def acm_status(self, ctx: Ctx, rec: dict) -> str:
        """PENDING_VALIDATION until every domain's CNAME is in a hosted zone of the emulator, then ISSUED
        acm_validation_s after the last record appeared; VALIDATION_TIMED_OUT after acm_validation_timeout_s."""
        if rec["issued_at"] is not None:
            return "ISSUED"
        if rec["method"] == "DNS":
            times = [self.acm_record_seen(ctx, rec, d) for d in rec["bases"]]
            if times and all(t is not None for t in times):
                ready = max(times) + self.d("acm_validation_s")
                if ctx.now >= ready:
                    rec["issued_at"] = ready
                    return "ISSUED"
        if ctx.now >= rec["requested"] + self.d("acm_validation_timeout_s"):
            return "VALIDATION_TIMED_OUT"
        return "PENDING_VALIDATION"

    def acm_record_seen(self, ctx: Ctx, rec: dict, base: str):
        """When the validation record of `base` appeared (None while it is missing)."""
        name, value = self.acm_record(rec["account"], base)
        found = False
        for zid, zname in self.r53_zones(ctx):
            if dns_norm(base) == zname or dns_norm(base).endswith("." + zname):
                for r in self.r53_records(ctx, zid):
                    if r["name"] == name and r["type"] == "CNAME" and value in [dns_norm(v) for v in r["values"]]:
                        found = True
        if not found:
            rec["seen"].pop(base, None)
            return None
        return rec["seen"].setdefault(base, self.r53_seen.get((name, value), ctx.now))

    def cert_in_use(self, arn: str, now: float) -> list:
        """Load balancers whose listeners use the certificate, or did until less than acm_release_s ago."""
        lbs = {rec["lb"] for rec in self.listener_certs.values() if arn in rec["certs"]}
        lbs |= {lb for (c, lb), at in self.cert_released.items() if c == arn and now < at + self.d("acm_release_s")}
        return sorted(x for x in lbs if x)

    def pre_acm_RequestCertificate(self, ctx: Ctx):
        token = ctx.json.get("IdempotencyToken")
        if not token:
            return None
        domain = str(ctx.json.get("DomainName", "")).lower()
        known = self.cert_tokens.get((token, domain))
        if known and ctx.now - known["at"] < self.d("acm_idempotency_window_s") and known["arn"] in self.certs:
            return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                            json.dumps({"CertificateArn": known["arn"]}).encode(), injected=True)
        # moto matches tokens on tags alone (and ignores the domain): the proxy keeps the tokens itself.
        doc = dict(ctx.json)
        doc.pop("IdempotencyToken")
        ctx.set_json_body(doc)
        ctx.extra["token"] = (token, domain)
        return None

    def post_acm_RequestCertificate(self, ctx: Ctx, resp: Response):
        arn = json.loads(resp.body or b"{}").get("CertificateArn")
        if not arn:
            return
        req = ctx.json
        domains = [req.get("DomainName", "")] + [d for d in req.get("SubjectAlternativeNames") or [] if d != req.get("DomainName")]
        bases = []
        for d in domains:
            base = d[2:] if d.startswith("*.") else d
            if base not in bases:
                bases.append(base)
        self.certs[arn] = {"arn": arn, "domains": domains, "bases": bases, "account": arn.split(":")[4],
                           # from the answer: moto takes a while to make the key
                           "method": req.get("ValidationMethod") or "EMAIL", "requested": time.time(), "issued_at": None,
                           "seen": {}}
        if ctx.extra.get("token"):
            self.cert_tokens[ctx.extra["token"]] = {"arn": arn, "at": ctx.now}

    def post_acm_DescribeCertificate(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        cert = doc.get("Certificate") or {}
        arn = cert.get("CertificateArn")
        cert["InUseBy"] = self.cert_in_use(arn, ctx.now)  # AWS lists load balancers; moto lists listeners, forever
        rec = self.certs.get(arn)
        if rec is not None:
            status = self.acm_status(ctx, rec)
            cert["Status"] = status
            options = []
            for d in rec["domains"]:
                base = d[2:] if d.startswith("*.") else d
                seen = rec["seen"].get(base)
                if status == "ISSUED" or (seen is not None and ctx.now >= seen + self.d("acm_validation_s")):
                    vstatus = "SUCCESS"
                else:
                    vstatus = "FAILED" if status == "VALIDATION_TIMED_OUT" else "PENDING_VALIDATION"
                option = {"DomainName": d, "ValidationDomain": d, "ValidationStatus": vstatus, "ValidationMethod": rec["method"]}
                if rec["method"] == "DNS" and ctx.now >= rec["requested"] + self.d("acm_record_delay_s"):
                    name, value = self.acm_record(rec["account"], d)
                    option["ResourceRecord"] = {"Name": name, "Type": "CNAME", "Value": value}
                options.append(option)
            cert["DomainValidationOptions"] = options
            if status == "ISSUED":
                cert["IssuedAt"] = rec["issued_at"]
            else:
                for k in ("IssuedAt", "NotBefore", "NotAfter", "Serial", "Issuer"):
                    cert.pop(k, None)
        resp.set_json(doc)

    def pre_acm_ListCertificates(self, ctx: Ctx):
        wanted = ctx.json.get("CertificateStatuses")
        if wanted:
            doc = dict(ctx.json)
            doc.pop("CertificateStatuses")
            ctx.set_json_body(doc)
            ctx.extra["statuses"] = set(wanted)
        return None

    def post_acm_ListCertificates(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        wanted = ctx.extra.get("statuses")
        kept = []
        for summary in doc.get("CertificateSummaryList") or []:
            arn = summary.get("CertificateArn")
            summary["InUse"] = bool(self.cert_in_use(arn, ctx.now))
            rec = self.certs.get(arn)
            if rec is not None:
                summary["Status"] = self.acm_status(ctx, rec)
                if summary["Status"] == "ISSUED":
                    summary["IssuedAt"] = rec["issued_at"]
                else:
                    for k in ("IssuedAt", "NotBefore", "NotAfter"):
                        summary.pop(k, None)
            if wanted is None or summary.get("Status") in wanted:
                kept.append(summary)
        doc["CertificateSummaryList"] = kept
        resp.set_json(doc)

    def pre_acm_DeleteCertificate(self, ctx: Ctx):
        arn = ctx.json.get("CertificateArn", "")
        if self.cert_in_use(arn, ctx.now):
            account = arn.split(":")[4] if arn.count(":") >= 5 else "123456789012"
            raise Reject("ResourceInUseException", f"Certificate {arn} in account {account} is in use.")
        return None

    def post_acm_DeleteCertificate(self, ctx: Ctx, resp: Response):
        arn = ctx.json.get("CertificateArn")
        self.certs.pop(arn, None)
        for key in [k for k, v in self.cert_tokens.items() if v["arn"] == arn]:
            del self.cert_tokens[key]

    # ---- listeners and their certificates -------------------------------------------------------

    def cert_status_any(self, ctx: Ctx, arn: str):
        rec = self.certs.get(arn)
        if rec is not None:
            return self.acm_status(ctx, rec)
        try:
            return self.call_json(ctx, "acm", "DescribeCertificate", {"CertificateArn": arn}).get("Certificate", {}).get("Status")
        except UpstreamError:
            return None  # moto reports the unknown certificate

    def check_listener_certs(self, ctx: Ctx, certs: list):
        for arn in certs:
            if ":acm:" not in arn:
                continue
            status = self.cert_status_any(ctx, arn)
            if status is not None and status != "ISSUED":
                raise Reject("UnsupportedCertificate", f"The certificate '{arn}' must have a fully-qualified domain name, "
                                                       "a supported signature, and a supported key size.")

    @staticmethod
    def request_certs(ctx: Ctx) -> list:
        return [v for k, v in sorted(ctx.params.items()) if re.match(r"^Certificates\.member\.\d+\.CertificateArn$", k)]

    def release_certs(self, lb: str, certs, now: float):
        for c in certs:
            self.cert_released[(c, lb)] = now

    def _remember_listener(self, m, lb: str | None = None):
        arn = xt(m, "ListenerArn")
        if not arn:
            return
        rec = self.listener_certs.setdefault(arn, {"lb": lb or xt(m, "LoadBalancerArn"), "certs": set()})
        rec["lb"] = xt(m, "LoadBalancerArn") or rec["lb"]
        return rec

    def post_elb_CreateListener(self, ctx: Ctx, resp: Response):
        root, _ = xml_parse(resp.body)
        for m in root.findall("./CreateListenerResult/Listeners/member"):
            rec = self._remember_listener(m)
            if rec is not None:
                rec["certs"] = {xt(c, "CertificateArn") for c in m.findall("./Certificates/member") if xt(c, "CertificateArn")}

    def pre_elb_ModifyListener(self, ctx: Ctx):
        self.check_listener_certs(ctx, self.request_certs(ctx))
        return None

    def post_elb_DescribeTargetGroups(self, ctx: Ctx, resp: Response):
        """A target group a listener was modified to forward to is associated with its load balancer on AWS."""
        if not self.tg_lbs:
            return
        root, ns = xml_parse(resp.body)
        changed = False
        for m in root.findall("./DescribeTargetGroupsResult/TargetGroups/member"):
            added = self.tg_lbs.get(xt(m, "TargetGroupArn"), set())
            arns = m.find("LoadBalancerArns")
            have = {e.text for e in arns.findall("member")} if arns is not None else set()
            for lb in sorted(added - have):
                if arns is None:
                    arns = ET.SubElement(m, "LoadBalancerArns")
                ET.SubElement(arns, "member").text = lb
                changed = True
        if changed:
            resp.set_xml(root, ns)

    def post_elb_ModifyListener(self, ctx: Ctx, resp: Response):
        root, _ = xml_parse(resp.body)
        for m in root.findall("./ModifyListenerResult/Listeners/member"):
            for a in m.findall("./DefaultActions/member"):
                for tg in [xt(a, "TargetGroupArn")] + [xt(t, "TargetGroupArn") for t in a.findall("./ForwardConfig/TargetGroups/member")]:
                    if tg and xt(m, "LoadBalancerArn"):
                        self.tg_lbs.setdefault(tg, set()).add(xt(m, "LoadBalancerArn"))
            rec = self._remember_listener(m)
            if rec is None:
                continue
            if xt(m, "Protocol") in ("HTTPS", "TLS"):
                new = {xt(c, "CertificateArn") for c in m.findall("./Certificates/member") if xt(c, "CertificateArn")}
                new = new if self.request_certs(ctx) else rec["certs"] | new
            else:
                new = set()
            self.release_certs(rec["lb"], rec["certs"] - new, ctx.now)
            rec["certs"] = new

    def pre_elb_AddListenerCertificates(self, ctx: Ctx):
        self.check_listener_certs(ctx, self.request_certs(ctx))
        return None

    def _listener_rec(self, ctx: Ctx, arn: str):
        rec = self.listener_certs.get(arn)
        if rec is None:
            try:
                root = self.query(ctx, "elasticloadbalancing", "DescribeListeners", {"ListenerArns.member.1": arn})
            except UpstreamError:
                return None
            m = root.find("./DescribeListenersResult/Listeners/member")
            rec = self._remember_listener(m) if m is not None else None
        return rec

    def post_elb_AddListenerCertificates(self, ctx: Ctx, resp: Response):
        rec = self._listener_rec(ctx, ctx.params.get("ListenerArn", ""))
        if rec is not None:
            rec["certs"] |= set(self.request_certs(ctx))

    def post_elb_RemoveListenerCertificates(self, ctx: Ctx, resp: Response):
        rec = self.listener_certs.get(ctx.params.get("ListenerArn", ""))
        if rec is not None:
            gone = set(self.request_certs(ctx)) & rec["certs"]
            rec["certs"] -= gone
            self.release_certs(rec["lb"], gone, ctx.now)

    def post_elb_DeleteListener(self, ctx: Ctx, resp: Response):
        rec = self.listener_certs.pop(ctx.params.get("ListenerArn", ""), None)
        if rec is not None:
            self.release_certs(rec["lb"], rec["certs"], ctx.now)

    # =========================================================================================
    # Route 53 (23-27)

    def r53_zones(self, ctx: Ctx) -> list:
        """[(zone id without /hostedzone/, normalized name)] of every hosted zone in moto."""
        def fetch():
            out, marker = [], None
            for _ in range(100):
                root = self.rest_xml(ctx, "route53", "GET", "/2013-04-01/hostedzone?maxitems=100"
                                     + (f"&marker={urllib.parse.quote(marker)}" if marker else ""))
                for z in root.findall("./HostedZones/HostedZone"):
                    out.append((xt(z, "Id", "").split("/")[-1], dns_norm(xt(z, "Name"))))
                marker = xt(root, "NextMarker")
                if xt(root, "IsTruncated") != "true" or not marker:
                    break
            return out
        return self.cached(ctx, "r53zones", fetch)

    @staticmethod
    def r53_parse_rrset(el) -> dict:
        alias = el.find("AliasTarget")
        return {
            "name": dns_norm(xt(el, "Name")), "raw_name": xt(el, "Name"), "type": xt(el, "Type"),
            "setid": xt(el, "SetIdentifier", ""), "ttl": xt(el, "TTL"),
            "values": [xt(v, "Value", "") for v in el.findall("./ResourceRecords/ResourceRecord")],
            "alias": None if alias is None else (dns_norm(xt(alias, "DNSName")), xt(alias, "HostedZoneId", ""),
                                                 (xt(alias, "EvaluateTargetHealth", "false") or "").lower() == "true"),
            "el": el,
        }

    def r53_records(self, ctx: Ctx, zid: str) -> list:
        def fetch():
            out, start = [], ""
            for _ in range(100):
                root = self.rest_xml(ctx, "route53", "GET", f"/2013-04-01/hostedzone/{zid}/rrset" + start)
                out += [self.r53_parse_rrset(el) for el in root.findall("./ResourceRecordSets/ResourceRecordSet")]
                if xt(root, "IsTruncated") != "true" or not xt(root, "NextRecordName"):
                    break
                start = "?" + urllib.parse.urlencode({"name": xt(root, "NextRecordName"), "type": xt(root, "NextRecordType", "")})
            return out
        return self.cached(ctx, ("r53records", zid), fetch)

    @staticmethod
    def r53_zone_of(path: str) -> str:
        m = re.search(r"/hostedzone/([^/?]+)", urllib.parse.urlsplit(path).path)
        return m.group(1) if m else ""

    def r53_new_change(self, ctx: Ctx, info, comment: str | None = None):
        """moto answers every change with the same INSYNC id: give it a PENDING id of its own."""
        if info is None:
            return
        cid = "C" + uuid.uuid4().hex.upper()[:20]
        self.r53_changes[cid] = {"submitted": ctx.now, "comment": comment}
        set_child(info, "Id", f"/change/{cid}")
        set_child(info, "Status", "PENDING" if self.d("route53_change_s") > 0 else "INSYNC")
        if comment:
            set_child(info, "Comment", comment)

    def pre_route53_GetChange(self, ctx: Ctx):
        cid = urllib.parse.unquote(urllib.parse.urlsplit(ctx.path).path.rstrip("/").split("/")[-1])
        change = self.r53_changes.get(cid)
        if change is None:
            raise Reject("NoSuchChange", f"A change with the specified change ID {cid} does not exist.", 404)
        status = "INSYNC" if ctx.now >= change["submitted"] + self.d("route53_change_s") else "PENDING"
        root = ET.Element("GetChangeResponse")
        info = ET.SubElement(root, "ChangeInfo")
        ET.SubElement(info, "Id").text = f"/change/{cid}"
        ET.SubElement(info, "Status").text = status
        ET.SubElement(info, "SubmittedAt").text = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(change["submitted"]))
        if change["comment"]:
            ET.SubElement(info, "Comment").text = change["comment"]
        return Response(200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        xml_dump(root, ROUTE53_NS), injected=True)

    def pre_route53_CreateHostedZone(self, ctx: Ctx):
        """moto makes a second zone for a CallerReference it has seen; AWS refuses."""
        try:
            ref = xt(xml_parse(ctx.body)[0], "CallerReference")
        except ET.ParseError:
            return None
        marker = None
        for _ in range(100):
            root = self.rest_xml(ctx, "route53", "GET", "/2013-04-01/hostedzone?maxitems=100"
                                 + (f"&marker={urllib.parse.quote(marker)}" if marker else ""))
            if any(xt(z, "CallerReference") == ref for z in root.findall("./HostedZones/HostedZone")):
                raise Reject("HostedZoneAlreadyExists", "A hosted zone has already been created with the specified "
                                                        "caller reference.", 409)
            marker = xt(root, "NextMarker")
            if xt(root, "IsTruncated") != "true" or not marker:
                break
        return None

    def post_route53_CreateHostedZone(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        self.r53_new_change(ctx, root.find("ChangeInfo"))
        resp.set_xml(root, ns)

    post_route53_DeleteHostedZone = post_route53_CreateHostedZone

    def r53_conflicts(self, state: dict, new: dict, zone: str) -> list:
        name, typ = new["name"], new["type"]
        if typ == "CNAME" and name == zone:
            return [f"RRSet of type CNAME with DNS name {name} is not permitted at apex in zone {zone}"]
        others = {t for (n, t, _) in state if n == name}
        if typ == "CNAME" and others - {"CNAME"}:
            return [f"RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other records "
                    f"with the same DNS name in zone {zone}"]
        if typ != "CNAME" and "CNAME" in others:
            return [f"RRSet of type {typ} with DNS name {name} is not permitted because a conflicting RRSet of type "
                    f"CNAME with the same DNS name already exists in zone {zone}"]
        return []

    def r53_alias_errors(self, ctx: Ctx, new: dict, zid: str, state: dict) -> list:
        if not new["alias"]:
            return []
        dns, target_zone, _ = new["alias"]
        head = f"Tried to create an alias that targets {dns}, type {new['type']} in zone {target_zone}"
        m = re.match(r"^(?:dualstack\.)?(.+\.([a-z0-9-]+)\.elb\.amazonaws\.com\.)$", dns)
        if m:
            try:
                lbs = self.cached(ctx, ("lbs-dns", m.group(2)), lambda: self.query(
                    ctx, "elasticloadbalancing", "DescribeLoadBalancers", region=m.group(2)).findall(
                    "./DescribeLoadBalancersResult/LoadBalancers/member"))
            except UpstreamError:
                return []
            for lb in lbs:
                if dns_norm(xt(lb, "DNSName")) == m.group(1):
                    if xt(lb, "CanonicalHostedZoneId") != target_zone:
                        return [f"{head}, but the alias target name does not lie within the target zone"]
                    return []
            return [f"{head}, but that target was not found"]
        if target_zone == zid and not any(n == dns for (n, _, _) in state):
            return [f"{head}, but that target was not found"]
        return []

    @staticmethod
    def r53_same(cur: dict, new: dict) -> bool:
        if (cur["alias"] is None) != (new["alias"] is None):
            return False
        if cur["alias"]:
            return cur["alias"] == new["alias"]
        return str(cur["ttl"]) == str(new["ttl"]) and sorted(cur["values"]) == sorted(new["values"])

    def pre_route53_ChangeResourceRecordSets(self, ctx: Ctx):
        """Judge the batch as AWS does (moto misses duplicates, CNAME conflicts, mismatched DELETEs and alias
        targets), all changes together; then send moto a batch its journal-based checks accept."""
        try:
            root, ns = xml_parse(ctx.body)
        except ET.ParseError:
            return None
        ctx.extra["comment"] = xt(root, "ChangeBatch/Comment")
        zid = self.r53_zone_of(ctx.path)
        zone = dict(self.r53_zones(ctx)).get(zid)
        if zone is None:
            return None  # moto: NoSuchHostedZone
        state = {(r["name"], r["type"], r["setid"]): r for r in self.r53_records(ctx, zid)}
        errors = []
        for change in root.findall("./ChangeBatch/Changes/Change"):
            action, el = xt(change, "Action"), change.find("ResourceRecordSet")
            if el is None or action not in ("CREATE", "UPSERT", "DELETE"):
                return None
            new = self.r53_parse_rrset(el)
            if not (new["name"] == zone or new["name"].endswith("." + zone)):
                return None  # moto: not permitted in zone
            key = (new["name"], new["type"], new["setid"])
            desc = f"[name='{new['name']}', type='{new['type']}'" + (f", set-identifier='{new['setid']}'" if new["setid"] else "") + "]"
            cur = state.get(key)
            if action == "DELETE":
                if cur is None:
                    errors.append(f"Tried to delete resource record set {desc} but it was not found")
                elif not self.r53_same(cur, new):
                    errors.append(f"Tried to delete resource record set {desc} but the values provided do not match the current values")
                else:
                    change.remove(el)  # moto compares with its journal, case- and order-sensitively: the stored form
                    change.append(cur["el"])
                    del state[key]
                continue
            if action == "CREATE" and cur is not None:
                errors.append(f"Tried to create resource record set {desc} but it already exists")
                continue
            errors += self.r53_conflicts({k: v for k, v in state.items() if k != key}, new, zone)
            errors += self.r53_alias_errors(ctx, new, zid, state)
            if cur is not None:
                set_child(el, "Name", cur["raw_name"])  # moto's UPSERT is case-sensitive
            set_child(change, "Action", "UPSERT")  # moto's CREATE misjudges a record that was deleted before
            state[key] = new
        if errors:
            raise Reject("InvalidChangeBatch", "[" + ", ".join(errors) + "]")
        ctx.body = xml_dump(root, ns or ROUTE53_NS)
        return None

    def post_route53_ChangeResourceRecordSets(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        self.r53_new_change(ctx, root.find("ChangeInfo"), ctx.extra.get("comment"))
        resp.set_xml(root, ns)
        try:
            req, _ = xml_parse(ctx.body)
        except ET.ParseError:
            return
        for change in req.findall("./ChangeBatch/Changes/Change"):
            el = change.find("ResourceRecordSet")
            if xt(change, "Action") in ("CREATE", "UPSERT") and el is not None and xt(el, "Type") == "CNAME":
                for v in el.findall("./ResourceRecords/ResourceRecord"):
                    self.r53_seen.setdefault((dns_norm(xt(el, "Name")), dns_norm(xt(v, "Value"))), ctx.now)

    def post_route53_ListResourceRecordSets(self, ctx: Ctx, resp: Response):
        """AWS returns * as \\052, alias targets in lower case with a trailing dot, and a plain SOA value."""
        root, ns = xml_parse(resp.body)
        for el in root.findall("./ResourceRecordSets/ResourceRecordSet"):
            name = xt(el, "Name", "")
            if "*" in name:
                set_child(el, "Name", name.replace("*", "\\052"))
            alias = el.find("AliasTarget")
            if alias is not None and xt(alias, "DNSName"):
                set_child(alias, "DNSName", dns_norm(xt(alias, "DNSName")))
            for v in el.findall("./ResourceRecords/ResourceRecord/Value"):
                m = re.fullmatch(r"\{'Value': '(.*)'\}", v.text or "")
                if m:
                    v.text = m.group(1)
        resp.set_xml(root, ns)

    def pre_route53_ListHostedZonesByName(self, ctx: Ctx):
        """moto keeps only zones named exactly DNSName and ignores MaxItems; AWS lists from DNSName on, in order."""
        ctx.extra["byname"] = {k: ctx.params.get(k) for k in ("dnsname", "hostedzoneid", "maxitems")}
        ctx.set_query([])
        return None

    def post_route53_ListHostedZonesByName(self, ctx: Ctx, resp: Response):
        root, ns = xml_parse(resp.body)
        want = ctx.extra.get("byname") or {}
        holder = root.find("HostedZones")
        zones = list(holder) if holder is not None else []

        def order(z):
            name = dns_norm(xt(z, "Name")).rstrip(".")
            return (".".join(reversed(name.split("."))), xt(z, "Id", "").split("/")[-1])
        zones.sort(key=order)
        if want.get("dnsname"):
            start = (".".join(reversed(dns_norm(want["dnsname"]).rstrip(".").split("."))), want.get("hostedzoneid") or "")
            zones = [z for z in zones if order(z) >= start]
        try:
            limit = max(1, int(want.get("maxitems") or 100))
        except ValueError:
            limit = 100
        out = ET.Element("ListHostedZonesByNameResponse")
        box = ET.SubElement(out, "HostedZones")
        for z in zones[:limit]:
            box.append(z)
        if want.get("dnsname"):
            ET.SubElement(out, "DNSName").text = dns_norm(want["dnsname"])
        if want.get("hostedzoneid"):
            ET.SubElement(out, "HostedZoneId").text = want["hostedzoneid"]
        ET.SubElement(out, "IsTruncated").text = "true" if len(zones) > limit else "false"
        if len(zones) > limit:
            ET.SubElement(out, "NextDNSName").text = xt(zones[limit], "Name")
            ET.SubElement(out, "NextHostedZoneId").text = xt(zones[limit], "Id", "").split("/")[-1]
        ET.SubElement(out, "MaxItems").text = str(limit)
        resp.set_xml(out, ns or ROUTE53_NS)

    # =========================================================================================
    # Application Auto Scaling (28-32)

    SLR_NAME = "AWSServiceRoleForApplicationAutoScaling_ECSService"
    SLR_PATH = "/aws-service-role/ecs.application-autoscaling.amazonaws.com/"

    def slr_arn(self, ctx: Ctx) -> str:
        account = "123456789012"
        for arn in list(self.aas_targets.values()):
            if arn and arn.count(":") >= 5:
                account = arn.split(":")[4]
        return f"arn:aws:iam::{account}:role{self.SLR_PATH}{self.SLR_NAME}"

    @staticmethod
    def aas_key(doc: dict):
        return (doc.get("ServiceNamespace"), doc.get("ResourceId"), doc.get("ScalableDimension"))

    def pre_aas_RegisterScalableTarget(self, ctx: Ctx):
        req = ctx.json
        rid = str(req.get("ResourceId") or "")
        m = re.fullmatch(r"service/([^/]+)/([^/]+)", rid)
        if req.get("ServiceNamespace") == "ecs" and m:
            rec = self.find_service(m.group(1), m.group(2))
            # Just after CreateService, and once the service is draining or gone, AWS does not see it.
            if rec is not None and (self.svc_status(rec, ctx.now) != "ACTIVE"
                                    or ctx.now < rec["created"] + self.d("aas_service_visible_s")):
                raise Reject("ValidationException", f"ECS service doesn't exist: {rid}")
        lo, hi = req.get("MinCapacity"), req.get("MaxCapacity")
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            raise Reject("ValidationException", "Minimum capacity cannot be greater than maximum capacity")
        ctx.extra["aas_new"] = self.moto_scalable_target(ctx, self.aas_key(req)) is None
        return None

    def moto_scalable_target(self, ctx: Ctx, key):
        try:
            doc = self.call_json(ctx, "application-autoscaling", "DescribeScalableTargets",
                                 {"ServiceNamespace": key[0], "ResourceIds": [key[1]], "ScalableDimension": key[2]})
        except UpstreamError:
            return None
        return next((t for t in doc.get("ScalableTargets") or [] if self.aas_key(t) == key), None)

    def error_aas_RegisterScalableTarget(self, ctx: Ctx, resp: Response):
        if error_code_of(resp.status, resp.headers, resp.body) == "ClusterNotFoundException":
            return ctx.error("ValidationException", f"ECS service doesn't exist: {ctx.json.get('ResourceId')}")
        return None

    def post_aas_RegisterScalableTarget(self, ctx: Ctx, resp: Response):
        arn = json.loads(resp.body or b"{}").get("ScalableTargetARN")
        key = self.aas_key(ctx.json)
        if arn:
            new = key not in self.aas_targets
            self.aas_targets[key] = arn
            if new or ctx.json.get("Tags"):
                self.aas_tags.setdefault(arn, {}).update(ctx.json.get("Tags") or {})
        if (key[0] == "ecs" and not ctx.json.get("RoleARN") and self.cfg.get("aas_create_service_linked_role")):
            self.ensure_ecs_slr(ctx)
        if ctx.extra.get("aas_new"):
            self.aas_registered_at[key] = ctx.now
        self.clamp_ecs_desired_count(ctx, key)

    def clamp_ecs_desired_count(self, ctx: Ctx, key):
        """AWS: registering (or updating) a target of an active resource moves its current capacity into
        [MinCapacity, MaxCapacity] at once; moto leaves the service's desiredCount as it was."""
        m = re.fullmatch(r"service/([^/]+)/([^/]+)", str(key[1] or ""))
        if key[0] != "ecs" or key[2] != "ecs:service:DesiredCount" or not m:
            return
        rec = self.find_service(m.group(1), m.group(2))
        target = self.moto_scalable_target(ctx, key)
        if rec is None or target is None or self.svc_status(rec, ctx.now) != "ACTIVE":
            return
        lo, hi = target.get("MinCapacity"), target.get("MaxCapacity")
        if not isinstance(lo, int) or not isinstance(hi, int):
            return
        wanted = min(max(rec["desired"], lo), hi)
        if wanted == rec["desired"]:
            return
        try:
            self.call_json(ctx, "ecs", "UpdateService", {"cluster": m.group(1), "service": m.group(2),
                                                         "desiredCount": wanted})
        except UpstreamError:
            return
        self.svc_view(ctx, rec)  # settles the current deployment's rollout state first
        rec["desired"] = wanted
        self.reconcile(ctx, rec, ctx.now)

    def ensure_ecs_slr(self, ctx: Ctx):
        """AWS creates the service-linked role at the first ECS registration; moto does not (and its
        CreateServiceLinkedRole misnames this role)."""
        try:
            self.query(ctx, "iam", "GetRole", {"RoleName": self.SLR_NAME})
            return
        except UpstreamError as e:
            if e.code != "NoSuchEntity":
                return
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ecs.application-autoscaling.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        try:
            self.query(ctx, "iam", "CreateRole", {"RoleName": self.SLR_NAME, "Path": self.SLR_PATH,
                                                  "AssumeRolePolicyDocument": trust,
                                                  "Description": "Service-linked role for Application Auto Scaling of ECS services"})
        except UpstreamError:
            pass

    def post_aas_DescribeScalableTargets(self, ctx: Ctx, resp: Response):
        doc = json.loads(resp.body or b"{}")
        for t in doc.get("ScalableTargets") or []:
            if t.get("ScalableTargetARN"):
                self.aas_targets[self.aas_key(t)] = t["ScalableTargetARN"]
            if t.get("ServiceNamespace") == "ecs" and not t.get("RoleARN"):
                t["RoleARN"] = self.slr_arn(ctx)
            t.setdefault("SuspendedState", {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                                            "ScheduledScalingSuspended": False})
        resp.set_json(doc)

    def post_aas_DeregisterScalableTarget(self, ctx: Ctx, resp: Response):
        """AWS deletes the target's scaling policies and scheduled actions with it; moto keeps them."""
        key = self.aas_key(ctx.json)
        self.aas_registered_at.pop(key, None)
        arn = self.aas_targets.pop(key, None)
        self.aas_tags.pop(arn, None)
        for pkey in [k for k in self.aas_policy_arns if k[:3] == key]:
            del self.aas_policy_arns[pkey]
        try:
            doc = self.call_json(ctx, "application-autoscaling", "DescribeScalingPolicies",
                                 {"ServiceNamespace": key[0], "ResourceId": key[1], "ScalableDimension": key[2]})
            for pol in doc.get("ScalingPolicies") or []:
                if self.aas_key(pol) == key:
                    self.call_json(ctx, "application-autoscaling", "DeleteScalingPolicy",
                                   {"PolicyName": pol["PolicyName"], "ServiceNamespace": key[0], "ResourceId": key[1],
                                    "ScalableDimension": key[2]})
        except UpstreamError:
            pass
        try:
            doc = self.call_json(ctx, "application-autoscaling", "DescribeScheduledActions",
                                 {"ServiceNamespace": key[0], "ResourceId": key[1], "ScalableDimension": key[2]})
            for action in doc.get("ScheduledActions") or []:
                if self.aas_key(action) == key:
                    self.call_json(ctx, "application-autoscaling", "DeleteScheduledAction",
                                   {"ScheduledActionName": action["ScheduledActionName"], "ServiceNamespace": key[0],
                                    "ResourceId": key[1], "ScalableDimension": key[2]})
        except UpstreamError:
            pass

    def pre_aas_PutScheduledAction(self, ctx: Ctx):
        """AWS: a scheduled action needs its scalable target registered (moto takes one for any resource)."""
        key = self.aas_key(ctx.json)
        found = self.call_json(ctx, "application-autoscaling", "DescribeScalableTargets",
                               {"ServiceNamespace": key[0], "ResourceIds": [key[1]], "ScalableDimension": key[2]})
        if not any(self.aas_key(t) == key for t in found.get("ScalableTargets") or []):
            raise Reject("ObjectNotFoundException", f"No scalable target registered for service namespace: {key[0]}, "
                                                    f"resource ID: {key[1]}, scalable dimension: {key[2]}")
        return None

    def pre_aas_DeleteScheduledAction(self, ctx: Ctx):
        """AWS: deleting an action that does not exist is ObjectNotFoundException (moto says nothing)."""
        req = ctx.json
        key = self.aas_key(req)
        found = self.call_json(ctx, "application-autoscaling", "DescribeScheduledActions",
                               {"ServiceNamespace": key[0], "ResourceId": key[1], "ScalableDimension": key[2],
                                "ScheduledActionNames": [req.get("ScheduledActionName")]})
        if not any(a.get("ScheduledActionName") == req.get("ScheduledActionName") and self.aas_key(a) == key
                   for a in found.get("ScheduledActions") or []):
            raise Reject("ObjectNotFoundException", f"No scheduled action found for service namespace: {key[0]}, "
                                                    f"resource ID: {key[1]}, scalable dimension: {key[2]}, "
                                                    f"scheduled action name: {req.get('ScheduledActionName')}")
        return None

    def _aas_not_found(self, ctx: Ctx, resp: Response):
        """moto says ValidationException where AWS says ObjectNotFoundException."""
        text = resp.body.decode("utf-8", "replace")
        if error_code_of(resp.status, resp.headers, resp.body) == "ValidationException" and "No scal" in text:
            try:
                message = json.loads(text).get("message")
            except ValueError:
                message = "No scalable target found"
            return ctx.error("ObjectNotFoundException", message)
        return None

    error_aas_DeregisterScalableTarget = _aas_not_found
    error_aas_DeleteScalingPolicy = _aas_not_found

    def pre_aas_PutScalingPolicy(self, ctx: Ctx):
        req = ctx.json
        key = self.aas_key(req)
        found = self.call_json(ctx, "application-autoscaling", "DescribeScalableTargets",
                               {"ServiceNamespace": key[0], "ResourceIds": [key[1]], "ScalableDimension": key[2]})
        # A target registered a moment ago is not yet visible to PutScalingPolicy (eventual consistency).
        young = ctx.now < self.aas_registered_at.get(key, float("-inf")) + self.d("aas_target_visible_s")
        if young or not any(self.aas_key(t) == key for t in found.get("ScalableTargets") or []):
            raise Reject("ObjectNotFoundException", f"No scalable target registered for service namespace: {key[0]}, "
                                                    f"resource ID: {key[1]}, scalable dimension: {key[2]}")
        spec = ((req.get("TargetTrackingScalingPolicyConfiguration") or {}).get("PredefinedMetricSpecification") or {})
        if spec.get("PredefinedMetricType") == "ALBRequestCountPerTarget":
            self.check_resource_label(ctx, spec.get("ResourceLabel"))
        return None

    def check_resource_label(self, ctx: Ctx, label):
        """app/<lb-name>/<lb-id>/targetgroup/<tg-name>/<tg-id>, naming a target group that the load balancer uses."""
        if not label:
            raise Reject("ValidationException", "Resource label should be specified for predefined metric type "
                                                "ALBRequestCountPerTarget")
        m = re.fullmatch(r"(app/[^/]+/[0-9a-f]+)/(targetgroup/[^/]+/[0-9a-f]+)", label)
        if not m:
            raise Reject("ValidationException", f"Invalid resource label: {label}. The resource label must have the "
                                                "format app/<load-balancer-name>/<load-balancer-id>/targetgroup/"
                                                "<target-group-name>/<target-group-id>")
        try:
            lbs = self.query(ctx, "elasticloadbalancing", "DescribeLoadBalancers").findall(
                "./DescribeLoadBalancersResult/LoadBalancers/member")
            tgs = self.query(ctx, "elasticloadbalancing", "DescribeTargetGroups").findall(
                "./DescribeTargetGroupsResult/TargetGroups/member")
        except UpstreamError:
            return
        lb = next((x for x in lbs if (xt(x, "LoadBalancerArn") or "").endswith(":loadbalancer/" + m.group(1))), None)
        tg = next((x for x in tgs if (xt(x, "TargetGroupArn") or "").endswith(":" + m.group(2))), None)
        if lb is None or tg is None:
            raise Reject("ValidationException", f"Invalid resource label: {label}. "
                                                f"{'Load balancer' if lb is None else 'Target group'} not found.")
        attached = {e.text for e in tg.findall("./LoadBalancerArns/member")} | self.tg_lbs.get(xt(tg, "TargetGroupArn"), set())
        if xt(lb, "LoadBalancerArn") not in attached:
            raise Reject("ValidationException", f"Invalid resource label: {label}. Target group {xt(tg, 'TargetGroupArn')} "
                                                f"is not attached to load balancer {xt(lb, 'LoadBalancerArn')}.")

    def post_aas_PutScalingPolicy(self, ctx: Ctx, resp: Response):
        """Updating a policy keeps its ARN on AWS (alarms act on it); moto makes a new one each time."""
        doc = json.loads(resp.body or b"{}")
        key = self.aas_key(ctx.json) + (ctx.json.get("PolicyName"),)
        arn = self.aas_policy_arns.setdefault(key, doc.get("PolicyARN"))
        if arn and doc.get("PolicyARN") != arn:
            doc["PolicyARN"] = arn
            resp.set_json(doc)

    def post_aas_DeleteScalingPolicy(self, ctx: Ctx, resp: Response):
        self.aas_policy_arns.pop(self.aas_key(ctx.json) + (ctx.json.get("PolicyName"),), None)

    def post_aas_DescribeScalingPolicies(self, ctx: Ctx, resp: Response):
        """moto ignores the PolicyNames filter."""
        names = ctx.json.get("PolicyNames")
        doc = json.loads(resp.body or b"{}")
        policies = [p for p in doc.get("ScalingPolicies") or [] if not names or p.get("PolicyName") in names]
        for pol in policies:
            pol["PolicyARN"] = self.aas_policy_arns.get(self.aas_key(pol) + (pol.get("PolicyName"),), pol.get("PolicyARN"))
        doc["ScalingPolicies"] = policies
        resp.set_json(doc)

    def aas_known_arn(self, ctx: Ctx, arn: str) -> bool:
        if arn in self.aas_targets.values():
            return True
        for ns in ("ecs", "dynamodb"):
            try:
                doc = self.call_json(ctx, "application-autoscaling", "DescribeScalableTargets", {"ServiceNamespace": ns})
            except UpstreamError:
                continue
            for t in doc.get("ScalableTargets") or []:
                self.aas_targets[self.aas_key(t)] = t.get("ScalableTargetARN")
        return arn in self.aas_targets.values()

    def _aas_json(self, doc: dict) -> Response:
        return Response(200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                        json.dumps(doc).encode(), injected=True)

    def _aas_tag_target(self, ctx: Ctx) -> str:
        arn = ctx.json.get("ResourceARN", "")
        if not self.aas_known_arn(ctx, arn):
            raise Reject("ResourceNotFoundException", f"No scalable target found for ARN: {arn}")
        return arn

    # moto answers the tagging calls with HTTP 500: the proxy keeps the tags.
    def pre_aas_TagResource(self, ctx: Ctx):
        arn = self._aas_tag_target(ctx)
        ctx.extra["commit"] = lambda: self.aas_tags.setdefault(arn, {}).update(ctx.json.get("Tags") or {})
        return self._aas_json({})

    def pre_aas_UntagResource(self, ctx: Ctx):
        arn = self._aas_tag_target(ctx)

        def commit():
            for k in ctx.json.get("TagKeys") or []:
                self.aas_tags.get(arn, {}).pop(k, None)
        ctx.extra["commit"] = commit
        return self._aas_json({})

    def pre_aas_ListTagsForResource(self, ctx: Ctx):
        arn = self._aas_tag_target(ctx)
        return self._aas_json({"Tags": dict(self.aas_tags.get(arn, {}))})

    # =========================================================================================
    # S3 (33-37)

    @staticmethod
    def s3_bucket_name_ok(name: str) -> bool:
        """The naming rules of general purpose buckets."""
        return (3 <= len(name) <= 63 and re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name) is not None
                and ".." not in name and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name)
                and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
                and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")))

    def bucket_region(self, ctx: Ctx, bucket: str):
        if bucket not in self.bucket_regions:
            status, rh, _ = self.rest(ctx, "s3", "HEAD", "/" + urllib.parse.quote(bucket))
            if status >= 400 and status != 403:
                return None
            self.bucket_regions[bucket] = dict((k.lower(), v) for k, v in rh).get("x-amz-bucket-region", "us-east-1")
        return self.bucket_regions[bucket]

    def s3_region_check(self, ctx: Ctx):
        """A request signed for another region than the bucket's: AWS answers 301 PermanentRedirect (or, for a
        regional endpoint of the wrong region, 400 AuthorizationHeaderMalformed); moto serves it."""
        mode = self.cfg.get("s3_region_mismatch")
        if mode == "off" or not ctx.bucket or ctx.action in ("CreateBucket", "ListBuckets", "GetBucketLocation"):
            return None
        region = self.bucket_region(ctx, ctx.bucket)
        if region is None or region == ctx.region:
            return None
        headers = [("x-amz-bucket-region", region)]
        if mode == "malformed":
            raise Reject("AuthorizationHeaderMalformed", f"The authorization header is malformed; the region "
                                                         f"'{ctx.region}' is wrong; expecting '{region}'", 400,
                         extra={"Region": region}, headers=headers)
        raise Reject("PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified "
                                          "endpoint. Please send all future requests to this endpoint.", 301,
                     extra={"Endpoint": f"{ctx.bucket}.s3.{region}.amazonaws.com", "Bucket": ctx.bucket}, headers=headers)

    def s3_access_check(self, ctx: Ctx):
        """A bucket the caller has no permission on (another account's, or a policy that denies it): every
        request gets 403 AccessDenied (a HEAD only the status). moto knows one account and no IAM."""
        if ctx.bucket and ctx.bucket in (self.cfg.get("s3_denied_buckets") or []):
            raise Reject("AccessDenied", "Access Denied", 403)
        return None

    def s3_owner_check(self, ctx: Ctx):
        """A request naming an expected bucket owner (`x-amz-expected-bucket-owner`) that is not the bucket's
        account gets 403 AccessDenied on AWS (a HEAD only the status); moto ignores the header. moto keeps each
        account's buckets apart (the account of a request is its `x-moto-account-id` header, else moto's
        default), so the bucket's owner is the account whose ListBuckets names it. A bucket that does not exist
        is left to moto (NoSuchBucket)."""
        expected = ctx.header("x-amz-expected-bucket-owner")
        if not expected or not ctx.bucket or ctx.action in ("CreateBucket", "ListBuckets"):
            return None
        if self.bucket_region(ctx, ctx.bucket) is None:
            return None
        status, _, data = self.rest(ctx, "s3", "GET", "/", headers=[("x-moto-account-id", expected)])
        if status >= 300:
            return None
        owned = {urllib.parse.unquote(n.decode()) for n in re.findall(rb"<Name>([^<]*)</Name>", data)}
        if ctx.bucket not in owned:
            raise Reject("AccessDenied", "Access Denied", 403)
        return None

    def post_s3_PutBucketPolicy(self, ctx: Ctx, resp: Response):
        """moto enforces bucket policies but ignores their Conditions, so a Deny with a condition (the usual
        "deny requests without TLS") would deny everything. The proxy keeps the policy as given and leaves moto
        only the statements without a Condition. The proxy stands for AWS's HTTPS endpoint: requests count as
        made with TLS (aws:SecureTransport true), so such a Deny never applies to them."""
        try:
            doc = json.loads(ctx.body)
        except ValueError:
            return
        statements = doc.get("Statement") or []
        statements = statements if isinstance(statements, list) else [statements]
        kept = [st for st in statements if not (isinstance(st, dict) and st.get("Condition"))]
        if len(kept) == len(statements):
            self.bucket_policies.pop(ctx.bucket, None)
            return
        self.bucket_policies[ctx.bucket] = ctx.body
        path = f"/{urllib.parse.quote(ctx.bucket or '')}?policy"
        if kept:
            self.rest(ctx, "s3", "PUT", path, json.dumps(dict(doc, Statement=kept)).encode(),
                      region=self.bucket_regions.get(ctx.bucket), headers=[("Content-Type", "application/json")])
        else:
            self.rest(ctx, "s3", "DELETE", path, region=self.bucket_regions.get(ctx.bucket))

    def post_s3_GetBucketPolicy(self, ctx: Ctx, resp: Response):
        if ctx.bucket in self.bucket_policies:
            resp.body = self.bucket_policies[ctx.bucket]
            resp.injected = True

    def error_s3_GetBucketPolicy(self, ctx: Ctx, resp: Response):
        if ctx.bucket in self.bucket_policies:  # moto holds none: every statement had a Condition
            return Response(200, [("Content-Type", "application/json"),
                                  ("x-amz-request-id", uuid.uuid4().hex[:16].upper())],
                            self.bucket_policies[ctx.bucket], injected=True)
        return None

    def post_s3_DeleteBucketPolicy(self, ctx: Ctx, resp: Response):
        self.bucket_policies.pop(ctx.bucket, None)

    def post_s3_GetBucketVersioning(self, ctx: Ctx, resp: Response):
        """S3 answers <VersioningConfiguration>; moto names the root <GetBucketVersioningResponse>, which the
        Rust SDK refuses to parse."""
        if b"<GetBucketVersioningResponse" in resp.body:
            resp.body = resp.body.replace(b"<GetBucketVersioningResponse", b"<VersioningConfiguration", 1).replace(
                b"</GetBucketVersioningResponse>", b"</VersioningConfiguration>", 1)
            resp.injected = True

    def pre_s3_CreateBucket(self, ctx: Ctx):
        bucket = ctx.bucket or ""
        if not self.s3_bucket_name_ok(bucket):
            raise Reject("InvalidBucketName", "The specified bucket is not valid.", extra={"BucketName": bucket})
        constraint = None
        if ctx.body.strip():
            try:
                constraint = xt(xml_parse(ctx.body)[0], "LocationConstraint")
            except ET.ParseError:
                return None
        if constraint and ctx.region != "us-east-1" and constraint != ctx.region:
            raise Reject("IllegalLocationConstraintException", f"The {constraint} location constraint is incompatible for "
                                                               "the region specific endpoint this request was sent to.")
        ctx.extra["existed"] = self.bucket_region(ctx, bucket) is not None
        ctx.extra["region"] = constraint or ctx.region
        return None

    def post_s3_CreateBucket(self, ctx: Ctx, resp: Response):
        bucket = ctx.bucket or ""
        self.bucket_regions[bucket] = ctx.extra.get("region") or ctx.region
        # Tags given with CreateBucket (CreateBucketConfiguration/Tags) are the bucket's at once; moto drops them.
        if ctx.body.strip() and not ctx.extra.get("existed"):
            try:
                config = xml_parse(ctx.body)[0]
            except ET.ParseError:
                config = None
            tags = config.findall("./Tags/Tag") if config is not None else []
            if tags:
                body = ('<Tagging xmlns="%s"><TagSet>%s</TagSet></Tagging>' % (S3_NS, "".join(
                    "<Tag><Key>%s</Key><Value>%s</Value></Tag>" % (esc(xt(t, "Key") or ""), esc(xt(t, "Value") or ""))
                    for t in tags))).encode()
                self.rest(ctx, "s3", "PUT", f"/{urllib.parse.quote(bucket)}?tagging", body,
                          region=self.bucket_regions[bucket])
        if ctx.extra.get("existed") or not self.cfg.get("s3_aws_defaults"):
            return
        # New buckets have Block Public Access on (AWS default since April 2023).
        body = ('<PublicAccessBlockConfiguration xmlns="%s"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true'
                '</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true'
                '</RestrictPublicBuckets></PublicAccessBlockConfiguration>' % S3_NS).encode()
        self.rest(ctx, "s3", "PUT", f"/{urllib.parse.quote(bucket)}?publicAccessBlock", body,
                  region=self.bucket_regions[bucket])

    def post_s3_DeleteBucket(self, ctx: Ctx, resp: Response):
        self.bucket_regions.pop(ctx.bucket, None)
        self.bucket_policies.pop(ctx.bucket, None)

    def error_s3_GetBucketEncryption(self, ctx: Ctx, resp: Response):
        """Every bucket has SSE-S3 default encryption on AWS (since January 2023); moto has none."""
        if self.cfg.get("s3_aws_defaults") and error_code_of(resp.status, resp.headers, resp.body) == \
                "ServerSideEncryptionConfigurationNotFoundError":
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ServerSideEncryptionConfiguration xmlns="%s"><Rule>'
                    '<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>'
                    '</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule>'
                    '</ServerSideEncryptionConfiguration>' % S3_NS).encode()
            return Response(200, [("Content-Type", "application/xml"), ("x-amz-request-id", uuid.uuid4().hex[:16].upper())],
                            body, injected=True)
        return None

    def post_s3_PutObject(self, ctx: Ctx, resp: Response):
        if self.cfg.get("s3_aws_defaults") and resp.header("x-amz-server-side-encryption") is None:
            resp.set_header("x-amz-server-side-encryption", "AES256")
            resp.injected = True

    post_s3_GetObject = post_s3_HeadObject = post_s3_CopyObject = post_s3_PutObject

    def pre_s3_PutObject(self, ctx: Ctx):
        inm = ctx.header("if-none-match")
        if inm is not None and inm.strip() != "*":
            raise Reject("NotImplemented", "A header you provided implies functionality that is not implemented", 501,
                         extra={"Header": "If-None-Match"})
        return self.conditional_conflict(ctx)

    def conditional_conflict(self, ctx: Ctx):
        """A conditional write that races another one on the same key gets 409 ConditionalRequestConflict on
        AWS (retry it); the proxy handles one request at a time, so it makes them up at s3_conditional_conflict_rate."""
        rate = float(self.cfg.get("s3_conditional_conflict_rate") or 0.0)
        if rate > 0 and (ctx.header("if-none-match") or ctx.header("if-match")) and self.rng.random() < rate:
            raise Reject("ConditionalRequestConflict", "A conflicting conditional operation is currently in progress "
                                                       "against this resource. Please try again.", 409)
        return None

    pre_s3_DeleteObject = conditional_conflict

    def pre_s3_PutBucketPolicy(self, ctx: Ctx):
        text = ctx.body.decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not text.lstrip().startswith("{"):
            raise Reject("MalformedPolicy", "Policies must be valid JSON and the first byte must be '{'")
        statements = doc.get("Statement") or []
        statements = statements if isinstance(statements, list) else [statements]

        def public(st):
            principal = st.get("Principal")
            anyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"]))
            return st.get("Effect") == "Allow" and anyone and not st.get("Condition")
        if not any(isinstance(st, dict) and public(st) for st in statements):
            return None
        status, _, data = self.rest(ctx, "s3", "GET", f"/{urllib.parse.quote(ctx.bucket or '')}?publicAccessBlock")
        if status == 200 and re.search(rb"<BlockPublicPolicy>true</BlockPublicPolicy>", data):
            raise Reject("AccessDenied", f"User: arn:aws:iam::123456789012:user/{ctx.akid} is not authorized to perform: "
                                         f"s3:PutBucketPolicy on resource: \"arn:aws:s3:::{ctx.bucket}\" because public "
                                         "policies are blocked by the BlockPublicPolicy block public access setting.", 403)
        return None

# ---------------------------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aws-realism/1"
    realism: Realism = None  # set by main

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        trailer = self.rfile.readline(65537)
                        if not trailer or trailer in (b"\r\n", b"\n"):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        return b""

    def _serve(self):
        try:
            body = self._read_body()
        except Exception:
            self.close_connection = True
            return
        headers = list(self.headers.items())
        try:
            resp = self.realism.handle(self.command, self.path, headers, body)
        except Exception as e:
            traceback.print_exc()
            resp = Response(502, [("Content-Type", "text/plain")], f"realism proxy error: {e}".encode(), injected=True,
                            error="ProxyError")
        # One write for head and body: separate small writes stall on Nagle + delayed ACK (~40 ms a call).
        reason = http.server.BaseHTTPRequestHandler.responses.get(resp.status, ("",))[0]
        lines = [f"{self.protocol_version} {resp.status} {reason}"]
        for k, v in resp.headers:
            if k.lower() not in HOP_BY_HOP:
                lines.append(f"{k}: {v}")
        length = resp.header("content-length") if self.command == "HEAD" else None
        lines.append(f"Content-Length: {length if length is not None else len(resp.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head + (resp.body if self.command != "HEAD" else b""))
        self.wfile.flush()
        self.log_request(resp.status)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def load_config(args) -> dict:
    cfg = dict(DEFAULTS)
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            extra = json.load(f)
        unknown = set(extra) - set(DEFAULTS)
        if unknown:
            raise SystemExit(f"aws_realism: unknown config key(s): {', '.join(sorted(unknown))}")
        cfg.update(extra)
        for key in DURATION_KEYS:
            if not isinstance(cfg[key], (int, float)) or cfg[key] < 0:
                raise SystemExit(f"aws_realism: config key {key} must be a number >= 0")
        if cfg["s3_region_mismatch"] not in S3_REGION_MISMATCH:
            raise SystemExit(f"aws_realism: config key s3_region_mismatch must be one of {', '.join(S3_REGION_MISMATCH)}")
    for key, value in (("time_scale", args.time_scale), ("fault_rate", args.fault_rate), ("fault_seed", args.fault_seed),
                       ("latency_ms", args.latency_ms)):
        if value is not None:
            cfg[key] = value
    return cfg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="moto server URL, e.g. http://127.0.0.1:5000")
    p.add_argument("--port", type=int, default=0, help="port to listen on (127.0.0.1); 0 = a free one")
    p.add_argument("--time-scale", type=float, default=None, help="multiplies every AWS duration (default 1.0)")
    p.add_argument("--fault-rate", type=float, default=None, help="probability of an injected throttle/5xx (default 0)")
    p.add_argument("--fault-seed", type=int, default=None, help="seed of the fault sequence (default 1)")
    p.add_argument("--call-log", default=None, help="append one JSON line per request to this file")
    p.add_argument("--config", default=None, help="JSON file overriding durations/rates (see README.md)")
    p.add_argument("--latency-ms", type=float, default=None, help="added to every call, outside the lock (default 0)")
    p.add_argument("--verbose", action="store_true", help="print each request to stderr")
    args = p.parse_args(argv)
    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("aws_realism: --upstream must be a loopback address")
    cfg = load_config(args)
    Handler.realism = Realism(args.upstream, cfg, args.call_log, args.verbose)
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
