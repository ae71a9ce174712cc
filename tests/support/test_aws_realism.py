#!/usr/bin/env python3
"""Self-test of aws_realism.py: boto3 -> realism proxy -> moto, all on 127.0.0.1.

    .venv/bin/python -m unittest tests/support/test_aws_realism.py
    .venv/bin/python tests/support/test_aws_realism.py

Starts its own moto server and proxies on free loopback ports and kills them at the end.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")

if (__name__ == "__main__" and os.path.exists(VENV_PYTHON)
        and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".venv"))):
    os.execv(VENV_PYTHON, [VENV_PYTHON] + sys.argv)  # run as a script: use the project virtualenv (boto3, moto)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

PROXY = os.path.join(HERE, "aws_realism.py")
sys.path.insert(0, HERE)
import aws_realism  # noqa: E402  (stdlib only: its pure helpers are tested directly)

SCALE = 0.01
# Windows stretched (in AWS seconds) so that a test can see them reliably at SCALE.
CONFIG = {"task_eni_linger_s": 120, "table_creating_s": 50, "table_deleting_s": 50, "iam_propagation_s": 50, "acm_record_delay_s": 10,
          "acm_validation_s": 30, "acm_release_s": 20, "route53_change_s": 20, "aas_service_visible_s": 10,
          "aas_target_visible_s": 0}
TOL = 0.06  # seconds of slack on lower bounds

_procs = []
_tmp = tempfile.TemporaryDirectory(prefix="aws-realism-test-")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens(pid, port):
    """Whether process `pid` owns the socket listening on 127.0.0.1:port (Linux /proc). Another program
    could grab the same free port first, and then its server would answer our readiness probe."""
    try:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            if not os.path.exists(table):
                continue
            with open(table) as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if cols[1].endswith(f":{port:04X}") and cols[3] == "0A":
                        inodes.add(cols[9])
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return True  # no /proc: trust the probe
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def start_moto():
    for _ in range(3):
        port = free_port()
        moto_server = os.path.join(ROOT, ".venv", "bin", "moto_server")
        cmd = [moto_server] if os.path.exists(moto_server) else [sys.executable, "-m", "moto.server"]
        with open(os.environ.get("AWS_REALISM_TEST_MOTO_LOG", os.devnull), "ab") as log:  # for diagnosis
            proc = subprocess.Popen(cmd + ["-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
        _procs.append(proc)
        deadline = time.time() + 30
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            except Exception:
                time.sleep(0.1)
                continue
            if listens(proc.pid, port):
                return f"http://127.0.0.1:{port}"
            proc.kill()  # somebody else's server took the port: try another
            proc.wait()
            break
    raise RuntimeError("moto did not start")


def start_proxy(upstream, *args, config=None):
    log = os.path.join(_tmp.name, f"calls-{uuid.uuid4().hex[:8]}.jsonl")
    cmd = [sys.executable, PROXY, "--upstream", upstream, "--port", "0", "--call-log", log] + list(args)
    if config is not None:
        path = os.path.join(_tmp.name, f"config-{uuid.uuid4().hex[:8]}.json")
        with open(path, "w") as f:
            json.dump(config, f)
        cmd += ["--config", path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    _procs.append(proc)
    line = proc.stdout.readline().strip()
    assert line.startswith("READY "), f"proxy said {line!r}"
    return f"http://127.0.0.1:{int(line.split()[1])}", log


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def rust_like(request, **_):
    """Make botocore's requests look like the Rust SDK's: same protocols, Rust's exact Content-Type."""
    ct = request.headers.get("Content-Type")
    if isinstance(ct, bytes):
        ct = ct.decode()
    if ct and ct.startswith("application/x-www-form-urlencoded"):
        del request.headers["Content-Type"]
        request.headers["Content-Type"] = "application/x-www-form-urlencoded"


def clients(endpoint, attempts=1, mode="standard"):
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
              aws_secret_access_key="testing",
              config=Config(retries={"total_max_attempts": attempts, "mode": mode}, connect_timeout=5, read_timeout=30))
    out = {}
    for name in ("ec2", "ecs", "elbv2", "dynamodb", "iam", "logs", "sts", "acm", "route53", "application-autoscaling"):
        c = boto3.client(name, **kw)
        c.meta.events.register("before-send", rust_like)
        out[name] = c
    out["aas"] = out["application-autoscaling"]
    # path-style, as the Rust SDK addresses an IP endpoint
    out["s3"] = boto3.client("s3", **dict(kw, config=kw["config"].merge(Config(s3={"addressing_style": "path"}))))
    return out


def raw(url, method, path, service, body=b"", headers=None, region="us-east-1", target=None):
    """A request shaped like the Rust SDK's (signature not checked by moto): (status, headers, body)."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    h = {"authorization": f"AWS4-HMAC-SHA256 Credential=testing/{stamp[:8]}/{region}/{service}/aws4_request, "
                          f"SignedHeaders=host;x-amz-date, Signature={'a' * 64}",
         "x-amz-date": stamp, "x-amz-user-agent": "aws-sdk-rust/1.3.10 ua/2.1 api/test/1.0 os/linux lang/rust/1.89.0",
         "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    if target:
        h["x-amz-target"] = target
        h["content-type"] = "application/x-amz-json-1.1"
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    conn.close()
    return out


def code_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def wait_for(pred, timeout=10.0, interval=0.03):
    deadline = time.time() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def name(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


MOTO = PROXY_URL = CALL_LOG = None
C = None


def setUpModule():
    global MOTO, PROXY_URL, CALL_LOG, C
    MOTO = start_moto()
    PROXY_URL, CALL_LOG = start_proxy(MOTO, "--time-scale", str(SCALE), config=CONFIG)
    C = clients(PROXY_URL)


def tearDownModule():
    for p in _procs:
        if p.poll() is None:
            p.terminate()
    for p in _procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout:
            p.stdout.close()
    _tmp.cleanup()


class Net:
    """A VPC with an internet gateway, two public subnets (2 AZs) with a NAT gateway, two private subnets routed
    through it, and an ALB with an ip target group and a listener."""

    def __init__(self, c, with_lb=True, interval=20, threshold=3, dereg=100):
        ec2, elb = c["ec2"], c["elbv2"]
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=self.igw, VpcId=self.vpc)
        self.public = [ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                       for i, z in ((1, "a"), (2, "b"))]
        self.private = [ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                        for i, z in ((11, "a"), (12, "b"))]
        self.alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        self.nat_created = time.time()
        self.nat = ec2.create_nat_gateway(SubnetId=self.public[0], AllocationId=self.alloc)["NatGateway"]["NatGatewayId"]
        self.rtb = ec2.create_route_table(VpcId=self.vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=self.rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=self.nat)
        for s in self.private:
            ec2.associate_route_table(RouteTableId=self.rtb, SubnetId=s)
        self.lb_sg = ec2.create_security_group(GroupName=name("alb"), Description="alb", VpcId=self.vpc)["GroupId"]
        self.task_sg = ec2.create_security_group(GroupName=name("task"), Description="task", VpcId=self.vpc)["GroupId"]
        if with_lb:
            self.lb_created = time.time()
            self.lb = elb.create_load_balancer(Name=name("lb"), Subnets=self.public, SecurityGroups=[self.lb_sg])["LoadBalancers"][0]["LoadBalancerArn"]
            self.tg = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=self.vpc, TargetType="ip",
                                              HealthCheckIntervalSeconds=interval, HealthyThresholdCount=threshold)["TargetGroups"][0]["TargetGroupArn"]
            elb.modify_target_group_attributes(TargetGroupArn=self.tg, Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": str(dereg)}])
            self.listener = elb.create_listener(LoadBalancerArn=self.lb, Protocol="HTTP", Port=80,
                                                DefaultActions=[{"Type": "forward", "TargetGroupArn": self.tg}])["Listeners"][0]["ListenerArn"]


class Ecs:
    """A cluster, roles old enough to be usable, and a Fargate task definition."""

    def __init__(self, c, wait_iam=True):
        ecs, iam = c["ecs"], c["iam"]
        self.cluster = name("cl")
        ecs.create_cluster(clusterName=self.cluster)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        role = name("exec")
        self.exec_role = f"arn:aws:iam::123456789012:role/{role}"
        self.td = ecs.register_task_definition(
            family=name("fam"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            executionRoleArn=self.exec_role,
            containerDefinitions=[{"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80}],
                                   "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "w"}}}],
        )["taskDefinition"]["taskDefinitionArn"]
        # the role last, so that a CreateService right after this falls in its propagation window
        self.exec_role = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        self.roles_created = time.time()
        if wait_iam:
            time.sleep(max(0.0, self.roles_created + CONFIG["iam_propagation_s"] * SCALE + TOL - time.time()))

    def service_args(self, net, svc_name, desired=2, tg=None, subnets=None, lb=True):
        args = dict(cluster=self.cluster, serviceName=svc_name, taskDefinition=self.td, desiredCount=desired,
                    launchType="FARGATE",
                    networkConfiguration={"awsvpcConfiguration": {"subnets": subnets or net.private,
                                                                  "securityGroups": [net.task_sg], "assignPublicIp": "DISABLED"}})
        if lb:
            args["loadBalancers"] = [{"targetGroupArn": tg or net.tg, "containerName": "web", "containerPort": 80}]
        return args


def describe_service(c, cluster, svc):
    return c["ecs"].describe_services(cluster=cluster, services=[svc])["services"][0]


def target_states(c, tg):
    return sorted(d["TargetHealth"]["State"] for d in c["elbv2"].describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])


class WireTests(unittest.TestCase):
    """How the proxy identifies requests, and the error formats it produces."""

    def raw(self, headers, body, chunked=False):
        port = int(PROXY_URL.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.putrequest("POST", "/", skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if chunked:
            conn.putheader("transfer-encoding", "chunked")
            conn.endheaders()
            half = len(body) // 2
            for part in (body[:half], body[half:]):
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        else:
            conn.putheader("content-length", str(len(body)))
            conn.endheaders(body)
        r = conn.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        conn.close()
        return out

    @staticmethod
    def rust_headers(service, target=None, json_version="1.1"):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        h = {
            "content-type": f"application/x-amz-json-{json_version}" if target else "application/x-www-form-urlencoded",
            "x-amz-date": stamp,
            "authorization": f"AWS4-HMAC-SHA256 Credential=testing/{stamp[:8]}/us-east-1/{service}/aws4_request, "
                             f"SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-user-agent, Signature={'a' * 64}",
            "x-amz-user-agent": "aws-sdk-rust/1.3.10 ua/2.1 api/test/1.0 os/linux lang/rust/1.89.0",
            "user-agent": "aws-sdk-rust/1.3.10 os/linux lang/rust/1.89.0",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=3",
        }
        if target:
            h["x-amz-target"] = target
        return h

    def test_rust_style_requests_are_identified_and_forwarded(self):
        before = len(read_log(CALL_LOG))
        st, _, body = self.raw(self.rust_headers("ec2"), b"Action=DescribeVpcs&Version=2016-11-15")
        self.assertEqual(st, 200, body)
        self.assertIn(b"<DescribeVpcsResponse", body)
        st, _, body = self.raw(self.rust_headers("elasticloadbalancing"),
                               b"Action=DescribeLoadBalancers&Version=2015-12-01", chunked=True)
        self.assertEqual(st, 200, body)
        st, _, body = self.raw(self.rust_headers("ecs", "AmazonEC2ContainerServiceV20141113.ListClusters"), b"{}", chunked=True)
        self.assertEqual(st, 200, body)
        self.assertIn("clusterArns", json.loads(body))
        st, hdrs, body = self.raw(self.rust_headers("dynamodb", "DynamoDB_20120810.ListTables", "1.0"), b"{}")
        self.assertEqual(st, 200, body)
        st, _, body = self.raw(self.rust_headers("logs", "Logs_20140328.DescribeLogGroups"), b"{}")
        self.assertEqual(st, 200, body)
        st, _, body = self.raw(self.rust_headers("iam"), b"Action=ListRoles&Version=2010-05-08")
        self.assertEqual(st, 200, body)
        st, _, body = self.raw(self.rust_headers("sts"), b"Action=GetCallerIdentity&Version=2011-06-15")
        self.assertEqual(st, 200, body)
        got = [(e["service"], e["action"]) for e in read_log(CALL_LOG)[before:]]
        self.assertEqual(got, [("ec2", "DescribeVpcs"), ("elasticloadbalancing", "DescribeLoadBalancers"),
                               ("ecs", "ListClusters"), ("dynamodb", "ListTables"), ("logs", "DescribeLogGroups"),
                               ("iam", "ListRoles"), ("sts", "GetCallerIdentity")])

    def test_error_wire_formats(self):
        # ec2Query
        st, h, body = self.raw(self.rust_headers("ec2"), b"Action=DeleteSubnet&Version=2016-11-15&SubnetId=subnet-nope")
        self.assertEqual(st, 400)
        st, h, body = self.raw(self.rust_headers("logs", "Logs_20140328.PutRetentionPolicy"),
                               json.dumps({"logGroupName": "x", "retentionInDays": 2}).encode())
        self.assertEqual(st, 400)
        self.assertEqual(h["x-amzn-errortype"], "InvalidParameterException")
        self.assertEqual(json.loads(body)["__type"], "InvalidParameterException")
        self.assertIn("message", json.loads(body))
        ec2 = C["ec2"]
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        s = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        st, h, body = self.raw(self.rust_headers("elasticloadbalancing"),
                               f"Action=CreateLoadBalancer&Version=2015-12-01&Name={name('x')}&Subnets.member.1={s}".encode())
        self.assertEqual(st, 400)
        self.assertRegex(body.decode(), r'^<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
                                        r"<Error><Type>Sender</Type><Code>ValidationError</Code><Message>At least two subnets")
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.create_nat_gateway(SubnetId=s, AllocationId=alloc)
        st, h, body = self.raw(self.rust_headers("ec2"), f"Action=ReleaseAddress&Version=2016-11-15&AllocationId={alloc}".encode())
        self.assertEqual(st, 400)
        self.assertRegex(body.decode(), r'^<\?xml version="1.0" encoding="UTF-8"\?>\s*<Response><Errors><Error>'
                                        r"<Code>InvalidIPAddress.InUse</Code><Message>[^<]+</Message></Error></Errors>"
                                        r"<RequestID>[0-9a-f-]{36}</RequestID></Response>$")


class StateTests(unittest.TestCase):

    def test_01_nat_gateway_pending_available_deleting_deleted(self):
        ec2 = C["ec2"]
        net = Net(C, with_lb=False)
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        created = ec2.create_nat_gateway(SubnetId=net.public[1], AllocationId=alloc, ClientToken="nat-tok")
        t0 = time.time()
        self.assertEqual(created["NatGateway"]["State"], "pending")
        nat = created["NatGateway"]["NatGatewayId"]
        # a repeated ClientToken returns the same NAT, as on AWS
        again = ec2.create_nat_gateway(SubnetId=net.public[1], AllocationId=alloc, ClientToken="nat-tok")["NatGateway"]
        self.assertEqual((again["NatGatewayId"], again["State"]), (nat, "pending"))
        self.assertEqual(code_of(ec2.create_nat_gateway, SubnetId=net.public[0], AllocationId=alloc, ClientToken="nat-tok"),
                         "IdempotentParameterMismatch")
        state = lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"]
        self.assertEqual(state(), "pending")
        # the state filter works on the proxy's states
        ids = lambda s: [n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filters=[{"Name": "state", "Values": [s]}, {"Name": "vpc-id", "Values": [net.vpc]}])["NatGateways"]]
        self.assertIn(nat, ids("pending"))
        self.assertNotIn(nat, ids("available"))
        wait_for(lambda: state() == "available")
        self.assertGreaterEqual(time.time() - t0, 90 * SCALE - TOL)
        self.assertIn(nat, ids("available"))
        t1 = time.time()
        ec2.delete_nat_gateway(NatGatewayId=nat)
        self.assertEqual(state(), "deleting")
        wait_for(lambda: state() == "deleted")
        self.assertGreaterEqual(time.time() - t1, 60 * SCALE - TOL)

    def test_01b_nat_without_internet_gateway_fails_and_routes_blackhole(self):
        ec2 = C["ec2"]
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        s = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
        nat = ec2.create_nat_gateway(SubnetId=s, AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"])["NatGateway"]["NatGatewayId"]
        rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        describe = lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]
        self.assertEqual(describe()["State"], "pending")
        failed = wait_for(lambda: (lambda n: n if n["State"] != "pending" else None)(describe()))
        self.assertEqual(failed["State"], "failed")
        self.assertEqual(failed["FailureCode"], "Gateway.NotAttached")
        time.sleep(0.2)
        self.assertEqual(describe()["State"], "failed")  # terminal
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)  # still allowed
        routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
        nat_route = [r for r in routes if r.get("NatGatewayId") == nat][0]
        self.assertEqual(nat_route["State"], "blackhole")

    def test_01c_regional_nat_gateway_is_emulated_through_its_life(self):
        """moto 5.2.5 refuses availability_mode=regional: the layer keeps the gateway itself."""
        ec2 = C["ec2"]
        net = Net(C, with_lb=False)
        allocs = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2)]
        azs = [{"AvailabilityZone": z, "AllocationIds": [a]} for z, a in zip(("us-east-1a", "us-east-1b"), allocs)]
        tags = [{"ResourceType": "natgateway", "Tags": [{"Key": "stack", "Value": "regional-test"}]}]
        args = dict(AvailabilityMode="regional", VpcId=net.vpc, AvailabilityZoneAddresses=azs, TagSpecifications=tags)
        t0 = time.time()
        created = ec2.create_nat_gateway(ClientToken="regional-tok", **args)["NatGateway"]
        nat = created["NatGatewayId"]
        self.assertEqual((created["State"], created["AvailabilityMode"], created.get("SubnetId")), ("pending", "regional", None))
        self.assertEqual(sorted(a["AllocationId"] for a in created["NatGatewayAddresses"]), sorted(allocs))
        self.assertEqual({a["AvailabilityZone"] for a in created["NatGatewayAddresses"]}, {"us-east-1a", "us-east-1b"})
        self.assertEqual(ec2.create_nat_gateway(ClientToken="regional-tok", **args)["NatGateway"]["NatGatewayId"], nat)
        self.assertEqual(code_of(ec2.create_nat_gateway, ClientToken="regional-tok", AvailabilityMode="regional", VpcId=net.vpc),
                         "IdempotentParameterMismatch")
        # Its addresses are taken; a subnet is refused; an unknown VPC or address is named.
        self.assertEqual(code_of(ec2.create_nat_gateway, **args), "Resource.AlreadyAssociated")
        self.assertEqual(code_of(ec2.create_nat_gateway, AvailabilityMode="regional", VpcId=net.vpc, SubnetId=net.public[0]),
                         "InvalidParameterCombination")
        self.assertEqual(code_of(ec2.create_nat_gateway, AvailabilityMode="regional", VpcId="vpc-0000000000000000f"),
                         "InvalidVpcID.NotFound")
        bogus = [{"AvailabilityZone": "us-east-1a", "AllocationIds": ["eipalloc-0000000000000000f"]}]
        self.assertEqual(code_of(ec2.create_nat_gateway, AvailabilityMode="regional", VpcId=net.vpc,
                                 AvailabilityZoneAddresses=bogus), "InvalidAllocationID.NotFound")
        # Listed by ID, by VPC and tag filters (not by another tag), beside the zonal one.
        by_id = lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]
        listed = lambda *f: [n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filters=list(f))["NatGateways"]]
        vpc_filter = {"Name": "vpc-id", "Values": [net.vpc]}
        self.assertEqual(set(listed(vpc_filter)), {nat, net.nat})
        self.assertIn(nat, listed({"Name": "tag:stack", "Values": ["regional-test"]}))
        self.assertNotIn(nat, listed({"Name": "tag:stack", "Values": ["other"]}))
        self.assertIn(nat, listed({"Name": "tag-key", "Values": ["stack"]}))
        self.assertIn(nat, listed(vpc_filter, {"Name": "state", "Values": ["pending"]}))
        self.assertNotIn(nat, listed(vpc_filter, {"Name": "state", "Values": ["available"]}))
        # One route table serves every AZ; DescribeRouteTables shows the route (moto keeps no target).
        rtb = ec2.create_route_table(VpcId=net.vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        route = lambda: [r for r in ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
                         if r.get("DestinationCidrBlock") == "0.0.0.0/0"][0]
        self.assertEqual((route().get("NatGatewayId"), route()["State"]), (nat, "active"))
        other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        elsewhere = ec2.create_route_table(VpcId=other_vpc)["RouteTable"]["RouteTableId"]
        self.assertEqual(code_of(ec2.create_route, RouteTableId=elsewhere, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat),
                         "InvalidParameterValue")
        wait_for(lambda: by_id()["State"] == "available")
        self.assertGreaterEqual(time.time() - t0, 90 * SCALE - TOL)
        self.assertEqual({a["Status"] for a in by_id()["NatGatewayAddresses"]}, {"succeeded"})
        # Moved to the zonal gateway and back: the route follows.
        ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=net.nat)
        self.assertEqual(route().get("NatGatewayId"), net.nat)
        ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        self.assertEqual(route().get("NatGatewayId"), nat)
        # It holds its addresses, the VPC and the internet gateway until it is deleted.
        self.assertEqual(code_of(ec2.release_address, AllocationId=allocs[0]), "InvalidIPAddress.InUse")
        ec2.delete_nat_gateway(NatGatewayId=net.nat)
        wait_for(lambda: ec2.describe_nat_gateways(NatGatewayIds=[net.nat])["NatGateways"][0]["State"] == "deleted")
        self.assertEqual(code_of(ec2.detach_internet_gateway, InternetGatewayId=net.igw, VpcId=net.vpc), "DependencyViolation")
        t1 = time.time()
        ec2.delete_nat_gateway(NatGatewayId=nat)
        self.assertEqual((by_id()["State"], route()["State"]), ("deleting", "blackhole"))
        wait_for(lambda: by_id()["State"] == "deleted")
        self.assertGreaterEqual(time.time() - t1, 60 * SCALE - TOL)
        self.assertIn("DeleteTime", by_id())
        self.assertEqual(code_of(ec2.delete_nat_gateway, NatGatewayId=nat), "NatGatewayNotFound")
        self.assertIsNone(code_of(ec2.release_address, AllocationId=allocs[0]))
        ec2.detach_internet_gateway(InternetGatewayId=net.igw, VpcId=net.vpc)

    def test_01d_regional_nat_without_internet_gateway_fails(self):
        ec2 = C["ec2"]
        vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24", AvailabilityZone="us-east-1a")
        nat = ec2.create_nat_gateway(AvailabilityMode="regional", VpcId=vpc)["NatGateway"]  # automatic addresses
        self.assertEqual([a["AvailabilityZone"] for a in nat["NatGatewayAddresses"]], ["us-east-1a"])
        describe = lambda: ec2.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])["NatGateways"][0]
        failed = wait_for(lambda: (lambda n: n if n["State"] != "pending" else None)(describe()))
        self.assertEqual((failed["State"], failed["FailureCode"]), ("failed", "Gateway.NotAttached"))

    def test_02_alb_provisioning_then_active(self):
        ec2, elb = C["ec2"], C["elbv2"]
        net = Net(C, with_lb=False)
        lb = elb.create_load_balancer(Name=name("lb"), Subnets=net.public)["LoadBalancers"][0]
        t0 = time.time()
        self.assertEqual(lb["State"]["Code"], "provisioning")
        code = lambda: elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"][0]["State"]["Code"]
        self.assertEqual(code(), "provisioning")
        wait_for(lambda: code() == "active")
        self.assertGreaterEqual(time.time() - t0, 150 * SCALE - TOL)

    def test_02b_deletion_protection_refuses_delete_load_balancer(self):
        elb = C["elbv2"]
        net = Net(C, with_lb=False)
        arn = elb.create_load_balancer(Name=name("lb"), Subnets=net.public)["LoadBalancers"][0]["LoadBalancerArn"]
        protect = lambda on: elb.modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": on}])
        protect("true")
        self.assertEqual(code_of(elb.delete_load_balancer, LoadBalancerArn=arn), "OperationNotPermitted")
        self.assertEqual(len(elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]), 1)
        protect("false")
        elb.delete_load_balancer(LoadBalancerArn=arn)

    def test_02c_deleting_a_flow_log_that_is_gone_is_an_unsuccessful_item_not_an_error(self):
        ec2, logs = C["ec2"], C["logs"]
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        group = name("flow")
        logs.create_log_group(logGroupName=group)
        made = ec2.create_flow_logs(ResourceType="VPC", ResourceIds=[vpc], TrafficType="ALL", LogGroupName=group,
                                    LogDestinationType="cloud-watch-logs",
                                    DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow")
        flow_log = made["FlowLogIds"][0]
        self.assertEqual(ec2.delete_flow_logs(FlowLogIds=[flow_log]).get("Unsuccessful", []), [])
        again = ec2.delete_flow_logs(FlowLogIds=[flow_log])["Unsuccessful"]
        self.assertEqual([(u["ResourceId"], u["Error"]["Code"]) for u in again], [(flow_log, "InvalidFlowLogId.NotFound")])
        ec2.delete_vpc(VpcId=vpc)
        logs.delete_log_group(logGroupName=group)

    def test_02e_gateway_endpoints_route_their_tables_and_hold_the_vpc(self):
        ec2 = C["ec2"]
        vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        a, b = (ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(2))
        s3 = "com.amazonaws.us-east-1.s3"
        pl = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [s3]}])["PrefixLists"][0]["PrefixListId"]
        endpoint = ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=vpc, ServiceName=s3,
                                           RouteTableIds=[a])["VpcEndpoint"]["VpcEndpointId"]
        routed = lambda t: [r.get("GatewayId") for r in ec2.describe_route_tables(RouteTableIds=[t])["RouteTables"][0]["Routes"]
                            if r.get("DestinationPrefixListId") == pl]
        self.assertEqual(routed(a), [endpoint])
        # A second S3 endpoint on a table the first one routes: refused, as AWS does.
        self.assertEqual(code_of(ec2.create_vpc_endpoint, VpcEndpointType="Gateway", VpcId=vpc, ServiceName=s3,
                                 RouteTableIds=[a]), "RouteAlreadyExists")
        # Adding and removing a table adds and removes its route.
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, AddRouteTableIds=[b], RemoveRouteTableIds=[a])
        self.assertEqual((routed(a), routed(b)), ([], [endpoint]))
        # The VPC is held by its endpoint until the endpoint is deleted.
        for t in (a, b):
            ec2.delete_route_table(RouteTableId=t)
        self.assertEqual(code_of(ec2.delete_vpc, VpcId=vpc), "DependencyViolation")
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
        ec2.delete_vpc(VpcId=vpc)

    def test_02d_access_logs_need_a_bucket_elb_may_write_to(self):
        elb, s3 = C["elbv2"], C["s3"]
        net = Net(C, with_lb=False)
        arn = elb.create_load_balancer(Name=name("lb"), Subnets=net.public)["LoadBalancers"][0]["LoadBalancerArn"]
        account = arn.split(":")[4]
        bucket = name("logs")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"Tags": [{"Key": "k", "Value": "v"}]})
        self.assertEqual(s3.get_bucket_tagging(Bucket=bucket)["TagSet"], [{"Key": "k", "Value": "v"}])
        logs = lambda prefix: elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"}, {"Key": "access_logs.s3.bucket", "Value": bucket},
            {"Key": "access_logs.s3.prefix", "Value": prefix}])
        self.assertEqual(code_of(logs, "alb"), "InvalidConfigurationRequest")  # no policy
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                  "Principal": {"AWS": "arn:aws:iam::127311923021:root"}, "Action": "s3:PutObject",
                  "Resource": f"arn:aws:s3:::{bucket}/alb/AWSLogs/{account}/*"}]}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        self.assertEqual(code_of(logs, "other"), "InvalidConfigurationRequest")  # another prefix
        logs("alb")
        elb.delete_load_balancer(LoadBalancerArn=arn)

    def test_03_dynamodb_creating_active_deleting_gone(self):
        ddb = C["dynamodb"]
        t = name("tbl")
        t0 = time.time()  # before the call: the first table of a fresh moto takes a while to create
        out = ddb.create_table(TableName=t, AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        self.assertEqual(out["TableDescription"]["TableStatus"], "CREATING")
        status = lambda: ddb.describe_table(TableName=t)["Table"]["TableStatus"]
        self.assertEqual(status(), "CREATING")
        self.assertEqual(code_of(ddb.put_item, TableName=t, Item={"k": {"S": "a"}}), "ResourceNotFoundException")
        self.assertEqual(code_of(ddb.delete_table, TableName=t), "ResourceInUseException")
        wait_for(lambda: status() == "ACTIVE")
        self.assertGreaterEqual(time.time() - t0, CONFIG["table_creating_s"] * SCALE - TOL)
        t1 = time.time()
        ddb.put_item(TableName=t, Item={"k": {"S": "a"}})
        out = ddb.delete_table(TableName=t)
        self.assertEqual(out["TableDescription"]["TableStatus"], "DELETING")
        self.assertEqual(status(), "DELETING")
        self.assertIn(t, ddb.list_tables()["TableNames"])
        self.assertEqual(code_of(ddb.get_item, TableName=t, Key={"k": {"S": "a"}}), "ResourceNotFoundException")
        wait_for(lambda: code_of(ddb.describe_table, TableName=t) == "ResourceNotFoundException")
        self.assertGreaterEqual(time.time() - t1, CONFIG["table_deleting_s"] * SCALE - TOL)


    def test_03b_dynamodb_tag_resource_overwrites_a_keys_value(self):
        ddb = C["dynamodb"]
        t = name("tagged")
        arn = ddb.create_table(TableName=t, AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
                               Tags=[{"Key": "team", "Value": "payments"}])["TableDescription"]["TableArn"]
        ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "platform"}, {"Key": "owner", "Value": "ops"}])
        tags = sorted((x["Key"], x["Value"]) for x in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"])
        self.assertEqual(tags, [("owner", "ops"), ("team", "platform")])

class EcsServiceTests(unittest.TestCase):

    def test_03_service_settings_kept_and_checked(self):
        ecs = C["ecs"]
        net = Net(C)
        app = Ecs(C)
        svc = name("svc")
        args = app.service_args(net, svc, desired=1)
        bad = dict(args, deploymentConfiguration={"minimumHealthyPercent": 101, "maximumPercent": 200})
        self.assertEqual(code_of(ecs.create_service, **bad), "InvalidParameterException")
        ecs.create_service(**dict(args, deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 150},
                                  healthCheckGracePeriodSeconds=45, enableExecuteCommand=True))
        # moto drops these at create: the layer keeps them and DescribeServices returns them, as ECS does.
        s = describe_service(C, app.cluster, svc)
        self.assertEqual((s["deploymentConfiguration"]["minimumHealthyPercent"], s["deploymentConfiguration"]["maximumPercent"]),
                         (50, 150))
        self.assertEqual((s["healthCheckGracePeriodSeconds"], s["enableExecuteCommand"]), (45, True))
        ecs.update_service(cluster=app.cluster, service=svc, healthCheckGracePeriodSeconds=0, enableExecuteCommand=False)
        s = describe_service(C, app.cluster, svc)
        self.assertEqual((s["healthCheckGracePeriodSeconds"], s["enableExecuteCommand"]), (0, False))
        self.assertEqual(s["deploymentConfiguration"]["maximumPercent"], 150)

    def test_04_service_lifecycle(self):
        ec2, ecs, elb = C["ec2"], C["ecs"], C["elbv2"]
        net = Net(C)
        app = Ecs(C)
        svc = name("svc")
        out = ecs.create_service(**app.service_args(net, svc, desired=2))["service"]
        self.assertEqual((out["runningCount"], out["pendingCount"]), (0, 2))
        self.assertEqual(out["deployments"][0]["rolloutState"], "IN_PROGRESS")
        nat_ready = net.nat_created + 90 * SCALE
        lb_active = net.lb_created + 150 * SCALE
        first = {}
        deadline = time.time() + 15
        while time.time() < deadline and "completed" not in first:
            states = target_states(C, net.tg)  # first: a target seen here means a task runs in `s` below
            s = describe_service(C, app.cluster, svc)
            now = time.time()
            if s["runningCount"] == 2:
                first.setdefault("running", now)
            elif "running" not in first:
                self.assertEqual(s["runningCount"] + s["pendingCount"], 2)
                if s["runningCount"] == 0:
                    self.assertEqual(states, [])
            if states and "targets" not in first:
                first["targets"] = now
                self.assertEqual(set(states), {"initial"})
            if states == ["healthy", "healthy"]:
                first.setdefault("healthy", now)
            if s["deployments"][0]["rolloutState"] == "COMPLETED":
                first.setdefault("completed", now)
                self.assertEqual(target_states(C, net.tg), ["healthy", "healthy"])
                first.setdefault("healthy", time.time())
            time.sleep(0.03)
        self.assertIn("completed", first, first)
        # tasks start task_start_s after the NAT route is usable; targets turn healthy
        # HealthyThresholdCount x interval after both the task runs and the ALB is active
        self.assertGreaterEqual(first["running"], nat_ready + 30 * SCALE - TOL)
        self.assertGreaterEqual(first["healthy"], max(first["running"], lb_active) + 20 * 3 * SCALE - TOL)
        ips = [d["Target"]["Id"] for d in elb.describe_target_health(TargetGroupArn=net.tg)["TargetHealthDescriptions"]]
        self.assertTrue(all(ip.startswith("10.0.1") for ip in ips), ips)  # from the private subnets
        # ramp up
        ecs.update_service(cluster=app.cluster, service=svc, desiredCount=3)
        s = describe_service(C, app.cluster, svc)
        self.assertEqual(s["runningCount"] + s["pendingCount"], 3)
        self.assertGreaterEqual(s["runningCount"], 2)
        wait_for(lambda: describe_service(C, app.cluster, svc)["runningCount"] == 3)
        wait_for(lambda: target_states(C, net.tg) == ["healthy"] * 3)
        # scale to zero: targets drain for the deregistration delay (100 s here)
        t0 = time.time()  # before the call: the drain starts when the proxy sees it
        ecs.update_service(cluster=app.cluster, service=svc, desiredCount=0)
        self.assertEqual(target_states(C, net.tg), ["draining"] * 3)
        self.assertEqual(describe_service(C, app.cluster, svc)["status"], "ACTIVE")
        wait_for(lambda: describe_service(C, app.cluster, svc)["runningCount"] == 0)
        self.assertGreaterEqual(time.time() - t0, 100 * SCALE - TOL)
        self.assertEqual(target_states(C, net.tg), [])
        # delete: DRAINING for the deregistration delay, then INACTIVE
        t1 = time.time()
        ecs.delete_service(cluster=app.cluster, service=svc)
        self.assertEqual(describe_service(C, app.cluster, svc)["status"], "DRAINING")
        self.assertEqual(code_of(ecs.delete_cluster, cluster=app.cluster), "ClusterContainsServicesException")
        self.assertEqual(code_of(ecs.create_service, **app.service_args(net, svc)), "InvalidParameterException")
        self.assertEqual(code_of(ec2.delete_security_group, GroupId=net.task_sg), "DependencyViolation")
        self.assertEqual(code_of(ecs.update_service, cluster=app.cluster, service=svc, desiredCount=1), "ServiceNotActiveException")
        wait_for(lambda: describe_service(C, app.cluster, svc)["status"] == "INACTIVE")
        t2 = time.time()
        self.assertGreaterEqual(t2 - t1, 100 * SCALE - TOL)
        self.assertNotIn(svc, " ".join(ecs.list_services(cluster=app.cluster)["serviceArns"]))
        ecs.delete_cluster(cluster=app.cluster)
        # 15: the task ENIs linger task_eni_linger_s after the service went INACTIVE
        self.assertEqual(code_of(ec2.delete_security_group, GroupId=net.task_sg), "DependencyViolation")
        self.assertEqual(code_of(ec2.delete_subnet, SubnetId=net.private[0]), "DependencyViolation")
        wait_for(lambda: code_of(ec2.delete_security_group, GroupId=net.task_sg) is None)
        self.assertGreaterEqual(time.time() - t2, 120 * SCALE - 0.3)

    def test_04b_tasks_wait_for_a_nat_route(self):
        ec2, ecs = C["ec2"], C["ecs"]
        net = Net(C, with_lb=False)
        app = Ecs(C)
        lonely = ec2.create_subnet(VpcId=net.vpc, CidrBlock="10.0.21.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        rtb = ec2.create_route_table(VpcId=net.vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=lonely)
        svc = name("svc")
        ecs.create_service(**app.service_args(net, svc, desired=1, subnets=[lonely], lb=False))
        time.sleep(max(0.0, net.nat_created + (90 + 30) * SCALE + 0.2 - time.time()))
        s = describe_service(C, app.cluster, svc)
        self.assertEqual((s["runningCount"], s["pendingCount"]), (0, 1))  # no route out: image pull impossible
        t0 = time.time()
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=net.nat)
        wait_for(lambda: describe_service(C, app.cluster, svc)["runningCount"] == 1)
        self.assertGreaterEqual(time.time() - t0, 30 * SCALE - TOL)
        wait_for(lambda: describe_service(C, app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED")

    def test_04c_a_changed_network_configuration_rolls_the_tasks(self):
        ec2, ecs = C["ec2"], C["ecs"]
        net = Net(C, with_lb=False)
        app = Ecs(C)
        svc = name("svc")
        ecs.create_service(**app.service_args(net, svc, desired=1, lb=False))
        wait_for(lambda: describe_service(C, app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED")
        first = describe_service(C, app.cluster, svc)["deployments"][0]["id"]
        # The public subnets route to the internet gateway: tasks with a public IP pull through it.
        rtb = ec2.create_route_table(VpcId=net.vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=net.igw)
        for subnet in net.public:
            ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
        public = {"awsvpcConfiguration": {"subnets": net.public, "securityGroups": [net.task_sg], "assignPublicIp": "ENABLED"}}
        ecs.update_service(cluster=app.cluster, service=svc, networkConfiguration=public)
        s = describe_service(C, app.cluster, svc)
        self.assertNotEqual(s["deployments"][0]["id"], first)  # a new deployment, as AWS starts
        self.assertNotEqual(s["deployments"][0]["rolloutState"], "COMPLETED")
        in_private = lambda: ec2.describe_network_interfaces(  # noqa: E731
            Filters=[{"Name": "subnet-id", "Values": net.private}])["NetworkInterfaces"]
        self.assertTrue(in_private(), "the old tasks' interfaces stay until released")
        wait_for(lambda: describe_service(C, app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED")
        running = ecs.describe_tasks(cluster=app.cluster, tasks=ecs.list_tasks(cluster=app.cluster, serviceName=svc)["taskArns"])
        subnets = {d["value"] for t in running["tasks"] for a in t.get("attachments", []) for d in a.get("details", [])
                   if d["name"] == "subnetId"}
        self.assertTrue(subnets <= set(net.public), subnets)
        wait_for(lambda: in_private() == [])
        # The same configuration again: no new deployment.
        ecs.update_service(cluster=app.cluster, service=svc, networkConfiguration=public)
        self.assertEqual(len(describe_service(C, app.cluster, svc)["deployments"]), 1)

    def test_06_target_group_checks(self):
        ecs, elb = C["ecs"], C["elbv2"]
        net = Net(C)
        app = Ecs(C)
        lonely_tg = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=net.vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        try:
            ecs.create_service(**app.service_args(net, name("svc"), tg=lonely_tg))
            self.fail("expected InvalidParameterException")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "InvalidParameterException")
            self.assertIn(f"The target group with targetGroupArn {lonely_tg} does not have an associated load balancer.",
                          e.response["Error"]["Message"])
        instance_tg = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=8080, VpcId=net.vpc, TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=net.lb, Protocol="HTTP", Port=8080,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": instance_tg}])
        self.assertEqual(code_of(ecs.create_service, **app.service_args(net, name("svc"), tg=instance_tg)), "InvalidParameterException")
        ecs.create_service(**app.service_args(net, name("svc")))

    def test_06b_service_moves_to_a_new_target_group(self):
        """AWS: UpdateService loadBalancers moves the service (moto only stores it), refused for a target group no
        listener forwards to; once a listener is modified to forward to it, it is associated; the old target group
        cannot be deleted while a listener forwards to it."""
        ecs, elb = C["ecs"], C["elbv2"]
        net = Net(C)
        app = Ecs(C)
        svc = name("svc")
        ecs.create_service(**app.service_args(net, svc))
        new_tg = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=8080, VpcId=net.vpc,
                                         TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        move = [{"targetGroupArn": new_tg, "containerName": "web", "containerPort": 8080}]
        self.assertEqual(code_of(ecs.update_service, cluster=app.cluster, service=svc, loadBalancers=move,
                                 forceNewDeployment=True), "InvalidParameterException")
        elb.modify_listener(ListenerArn=net.listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": new_tg}])
        tg = elb.describe_target_groups(TargetGroupArns=[new_tg])["TargetGroups"][0]
        self.assertIn(net.lb, tg["LoadBalancerArns"])
        ecs.update_service(cluster=app.cluster, service=svc, loadBalancers=move, forceNewDeployment=True)
        self.assertEqual(describe_service(C, app.cluster, svc)["loadBalancers"], move)
        wait_for(lambda: any(d["TargetHealth"]["State"] == "healthy"
                             for d in elb.describe_target_health(TargetGroupArn=new_tg)["TargetHealthDescriptions"]))
        self.assertEqual(code_of(elb.delete_target_group, TargetGroupArn=new_tg), "ResourceInUse")
        elb.delete_target_group(TargetGroupArn=net.tg)  # nothing forwards to the old one any more

    def test_07_create_service_idempotency(self):
        ecs = C["ecs"]
        net = Net(C)
        app = Ecs(C)
        svc = name("svc")
        args = app.service_args(net, svc)
        first = ecs.create_service(clientToken="tok-1", **args)["service"]
        again = ecs.create_service(clientToken="tok-1", **args)["service"]
        self.assertEqual(first["serviceArn"], again["serviceArn"])
        self.assertEqual(first["deployments"][0]["id"], again["deployments"][0]["id"])  # the existing service
        self.assertEqual(code_of(ecs.create_service, clientToken="tok-2", **args), "InvalidParameterException")
        self.assertEqual(code_of(ecs.create_service, **args), "InvalidParameterException")
        changed = dict(args, desiredCount=5)
        self.assertEqual(code_of(ecs.create_service, clientToken="tok-1", **changed), "InvalidParameterException")

    def test_07b_capacity_provider_strategy(self):
        """AWS: a strategy names providers of the cluster only; moving from the launch type to a strategy (or
        changing one, or going back) takes forceNewDeployment; a provider in use stays on the cluster."""
        ecs = C["ecs"]
        net = Net(C, with_lb=False)
        app = Ecs(C)
        svc = name("svc")
        spot = [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
        args = app.service_args(net, svc, desired=5, lb=False)
        strategy_args = dict(args, capacityProviderStrategy=spot)
        del strategy_args["launchType"]
        self.assertEqual(code_of(ecs.create_service, **strategy_args), "InvalidParameterException")
        ecs.put_cluster_capacity_providers(cluster=app.cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                           defaultCapacityProviderStrategy=[])
        ecs.create_service(**args)
        update = dict(cluster=app.cluster, service=svc, capacityProviderStrategy=spot)
        self.assertEqual(code_of(ecs.update_service, **update), "InvalidParameterException")
        ecs.update_service(forceNewDeployment=True, **update)
        s = describe_service(C, app.cluster, svc)
        self.assertNotIn("launchType", s)
        self.assertEqual([(i["capacityProvider"], i["base"], i["weight"]) for i in s["capacityProviderStrategy"]],
                         [("FARGATE", 1, 1), ("FARGATE_SPOT", 0, 3)])
        arns = ecs.list_tasks(cluster=app.cluster, serviceName=svc)["taskArns"]
        tasks = ecs.describe_tasks(cluster=app.cluster, tasks=arns)["tasks"]
        providers = sorted(t.get("capacityProviderName") for t in tasks if t["desiredStatus"] == "RUNNING")
        self.assertEqual(providers, ["FARGATE", "FARGATE", "FARGATE_SPOT", "FARGATE_SPOT", "FARGATE_SPOT"])
        self.assertEqual(code_of(ecs.put_cluster_capacity_providers, cluster=app.cluster, capacityProviders=["FARGATE"],
                                 defaultCapacityProviderStrategy=[]), "ResourceInUseException")
        back = dict(cluster=app.cluster, service=svc, capacityProviderStrategy=[])
        self.assertEqual(code_of(ecs.update_service, **back), "InvalidParameterException")
        ecs.update_service(forceNewDeployment=True, **back)
        s = describe_service(C, app.cluster, svc)
        self.assertEqual((s.get("launchType"), s.get("capacityProviderStrategy")), ("FARGATE", None))
        ecs.update_service(cluster=app.cluster, service=svc, desiredCount=0)
        ecs.delete_service(cluster=app.cluster, service=svc)

    def test_10_delete_cluster_with_active_service(self):
        ecs = C["ecs"]
        net = Net(C)
        app = Ecs(C)
        svc = name("svc")
        ecs.create_service(**app.service_args(net, svc, desired=0, lb=False))
        try:
            ecs.delete_cluster(cluster=app.cluster)
            self.fail("expected ClusterContainsServicesException")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "ClusterContainsServicesException")
        ecs.delete_service(cluster=app.cluster, service=svc)
        wait_for(lambda: describe_service(C, app.cluster, svc)["status"] == "INACTIVE")
        ecs.delete_cluster(cluster=app.cluster)

    def test_17_iam_propagation(self):
        ecs = C["ecs"]
        net = Net(C)
        app = Ecs(C, wait_iam=False)
        svc = name("svc")
        try:
            ecs.create_service(**app.service_args(net, svc))
            self.fail("expected InvalidParameterException")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "InvalidParameterException")
            self.assertIn(f"ECS was unable to assume the role '{app.exec_role}' that was provided for this task.",
                          e.response["Error"]["Message"])
        wait_for(lambda: code_of(ecs.create_service, **app.service_args(net, svc)) is None, interval=0.05)
        self.assertGreaterEqual(time.time() - app.roles_created, CONFIG["iam_propagation_s"] * SCALE - TOL)


class EcsOperateTests(unittest.TestCase):
    """What an operator sees: deployments, service events, stopped tasks, and the containers' logs."""

    def image_revision(self, app, image, group=None):
        td = C["ecs"].describe_task_definition(taskDefinition=app.td)["taskDefinition"]
        container = dict(td["containerDefinitions"][0], image=image)
        if group:
            container["logConfiguration"] = {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "w"}}
        return C["ecs"].register_task_definition(
            family=td["family"], requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            executionRoleArn=td["executionRoleArn"], containerDefinitions=[container])["taskDefinition"]["taskDefinitionArn"]

    def messages(self, app, svc):
        return [e["message"] for e in describe_service(C, app.cluster, svc)["events"]]

    def test_18_deployments_events_and_a_pull_that_fails(self):
        ecs = C["ecs"]
        net = Net(C, dereg=60)
        app = Ecs(C)
        svc = name("svc")
        ecs.create_service(**app.service_args(net, svc, desired=2))
        wait_for(lambda: describe_service(C, app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED")
        events = self.messages(app, svc)
        self.assertEqual(events[0], f"(service {svc}) has reached a steady state.")  # newest first
        self.assertTrue(events[-1].startswith(f"(service {svc}) has started 2 tasks: (task "), events)
        self.assertEqual(sum("registered 1 targets in (target-group" in e for e in events), 2, events)
        first = describe_service(C, app.cluster, svc)["deployments"][0]["id"]

        # An image that does not exist: tasks stop with CannotPullContainerError, others are started,
        # and the circuit breaker rolls back to the completed revision.
        bad = self.image_revision(app, "nginx:no-such-tag")
        t0 = time.time()
        ecs.update_service(cluster=app.cluster, service=svc, taskDefinition=bad)
        s = describe_service(C, app.cluster, svc)
        self.assertEqual([d["status"] for d in s["deployments"]], ["PRIMARY", "ACTIVE"])
        self.assertEqual((s["deployments"][1]["id"], s["deployments"][1]["taskDefinition"]), (first, app.td))
        self.assertEqual(s["deployments"][1]["runningCount"], 2)  # the old tasks drain
        self.assertNotEqual(s["deployments"][0]["id"], first)
        stopped = wait_for(lambda: [t for t in ecs.describe_tasks(cluster=app.cluster, tasks=ecs.list_tasks(
            cluster=app.cluster, serviceName=svc, desiredStatus="STOPPED")["taskArns"] or ["none"])["tasks"]
            if t["stopCode"] == "TaskFailedToStart"])
        self.assertGreaterEqual(time.time() - t0, 30 * SCALE - TOL)
        self.assertTrue(stopped[0]["stoppedReason"].startswith("CannotPullContainerError: "), stopped[0])
        self.assertIn("docker.io/library/nginx:no-such-tag: not found", stopped[0]["stoppedReason"])
        self.assertEqual((stopped[0]["lastStatus"], stopped[0]["taskDefinitionArn"]), ("STOPPED", bad))
        wait_for(lambda: any("deployment failed: tasks failed to start." in e for e in self.messages(app, svc)))
        s = describe_service(C, app.cluster, svc)
        self.assertEqual(s["taskDefinition"], app.td)
        self.assertIn("rolled back", s["deployments"][0]["rolloutStateReason"])
        self.assertTrue(any(e.startswith(f"(service {svc}) rolling back to deployment ecs-svc/") for e in self.messages(app, svc)))
        wait_for(lambda: describe_service(C, app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED")
        running = ecs.list_tasks(cluster=app.cluster, serviceName=svc)["taskArns"]
        described = ecs.describe_tasks(cluster=app.cluster, tasks=running)["tasks"]
        self.assertEqual({t["taskDefinitionArn"] for t in described}, {app.td})
        self.assertEqual(len([t for t in described if t["lastStatus"] == "RUNNING"]), 2)

    def test_19_failing_health_checks_are_told(self):
        ecs = C["ecs"]
        net = Net(C, interval=10, threshold=2)
        app = Ecs(C)
        svc = name("svc")
        ecs.create_service(**app.service_args(net, svc, desired=1))
        wait_for(lambda: describe_service(C, app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED")
        ecs.update_service(cluster=app.cluster, service=svc, taskDefinition=self.image_revision(app, "nginx:fails-health-checks"))
        wait_for(lambda: "unhealthy" in target_states(C, net.tg))
        health = C["elbv2"].describe_target_health(TargetGroupArn=net.tg)["TargetHealthDescriptions"]
        reason = [d["TargetHealth"]["Reason"] for d in health if d["TargetHealth"]["State"] == "unhealthy"]
        self.assertEqual(reason, ["Target.ResponseCodeMismatch"])
        wait_for(lambda: any("is unhealthy in (target-group" in e for e in self.messages(app, svc)))
        wait_for(lambda: any("deployment failed: tasks failed ELB health checks." in e for e in self.messages(app, svc)))
        stopped = ecs.describe_tasks(cluster=app.cluster, tasks=ecs.list_tasks(
            cluster=app.cluster, serviceName=svc, desiredStatus="STOPPED")["taskArns"])["tasks"]
        self.assertTrue(any(t["stoppedReason"].startswith("Task failed ELB health checks in (target-group") for t in stopped))

    def test_21_filter_log_events_interleaves_streams_by_time(self):
        logs = C["logs"]
        group = "/ecs/" + name("g")
        logs.create_log_group(logGroupName=group)
        t0 = int(time.time() * 1000) - 60_000
        for s, offset in (("a", 0), ("b", 5)):
            logs.create_log_stream(logGroupName=group, logStreamName=s)
            logs.put_log_events(logGroupName=group, logStreamName=s,
                                logEvents=[{"timestamp": t0 + offset + 10 * i, "message": f"{s}{i}"} for i in range(3)])
        events = logs.filter_log_events(logGroupName=group)["events"]
        self.assertEqual([e["message"] for e in events], ["a0", "b0", "a1", "b1", "a2", "b2"])
        page = logs.filter_log_events(logGroupName=group, limit=4)
        rest = logs.filter_log_events(logGroupName=group, limit=4, nextToken=page["nextToken"])
        self.assertEqual([e["message"] for e in page["events"] + rest["events"]], ["a0", "b0", "a1", "b1", "a2", "b2"])

    def test_20_containers_write_their_logs(self):
        ecs, logs = C["ecs"], C["logs"]
        net = Net(C)
        app = Ecs(C)
        group = "/ecs/" + name("g")
        logs.create_log_group(logGroupName=group)
        svc = name("svc")
        args = app.service_args(net, svc, desired=2)
        args["taskDefinition"] = self.image_revision(app, "nginx:1.27", group=group)
        ecs.create_service(**args)
        wait_for(lambda: describe_service(C, app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED")
        events = logs.filter_log_events(logGroupName=group)["events"]
        streams = {e["logStreamName"] for e in events}
        self.assertEqual(len(streams), 2, streams)
        task_ids = {t.split("/")[-1] for t in ecs.list_tasks(cluster=app.cluster, serviceName=svc)["taskArns"]}
        self.assertEqual(streams, {f"w/web/{t}" for t in task_ids})  # <prefix>/<container>/<task-id>
        self.assertTrue(any("ready for start up" in e["message"] for e in events))
        self.assertTrue(any("ELB-HealthChecker/2.0" in e["message"] for e in events))
        # Written when read: ingested after the fact, as the awslogs driver's batches are.
        self.assertTrue(all(e["ingestionTime"] >= e["timestamp"] for e in events))
        # Nothing twice on a second read.
        again = logs.filter_log_events(logGroupName=group)["events"]
        self.assertEqual(len(again), len(events))


class CheckTests(unittest.TestCase):

    def test_05_alb_needs_two_azs(self):
        ec2, elb = C["ec2"], C["elbv2"]
        vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
        a1 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        a2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.2.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        b1 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.3.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
        for subnets in ([a1], [a1, a2]):
            try:
                elb.create_load_balancer(Name=name("lb"), Subnets=subnets)
                self.fail("expected ValidationError")
            except ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "ValidationError")
                self.assertEqual(e.response["Error"]["Message"], "At least two subnets in two different Availability Zones must be specified")
        elb.create_load_balancer(Name=name("lb"), Subnets=[a1, b1])

    def test_08_task_definition_checks(self):
        ecs = C["ecs"]
        base = dict(family=name("fam"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                    executionRoleArn="arn:aws:iam::123456789012:role/x",
                    containerDefinitions=[{"name": "web", "image": "nginx"}])
        for cpu, mem in (("256", "4096"), ("1024", "1024"), ("3000", "8192"), ("512", "1536")):
            try:
                ecs.register_task_definition(cpu=cpu, memory=mem, **base)
                self.fail(f"expected ClientException for {cpu}/{mem}")
            except ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "ClientException")
                self.assertIn("No Fargate configuration exists for given values", e.response["Error"]["Message"])
        for cpu, mem in (("256", "512"), ("512", "4096"), ("1 vCPU", "2 GB"), ("4096", "30720"), ("8192", "20480")):
            ecs.register_task_definition(cpu=cpu, memory=mem, **base)
        mounted = dict(base, containerDefinitions=[{"name": "web", "image": "nginx", "readonlyRootFilesystem": True,
                                                    "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp"}]}])
        self.assertEqual(code_of(ecs.register_task_definition, cpu="256", memory="512", **mounted), "ClientException")
        ecs.register_task_definition(cpu="256", memory="512", volumes=[{"name": "tmp"}], **mounted)
        self.assertEqual(code_of(ecs.register_task_definition, cpu="256", memory="512",
                                 volumes=[{"name": "tmp", "host": {"sourcePath": "/tmp"}}], **mounted), "ClientException")
        tmpfs = dict(base, containerDefinitions=[{"name": "web", "image": "nginx",
                                                  "linuxParameters": {"tmpfs": [{"containerPath": "/tmp", "size": 64}]}}])
        self.assertEqual(code_of(ecs.register_task_definition, cpu="256", memory="512", **tmpfs), "ClientException")
        no_role = dict(base, containerDefinitions=[{"name": "web", "image": "nginx", "logConfiguration": {"logDriver": "awslogs", "options": {}}}])
        del no_role["executionRoleArn"]
        self.assertEqual(code_of(ecs.register_task_definition, cpu="256", memory="512", **no_role), "ClientException")
        # A container's health check, stop timeout and port mappings within ECS's limits (moto stores any).
        def container(**kw):
            return dict(base, containerDefinitions=[dict({"name": "web", "image": "nginx"}, **kw)])
        check = {"command": ["CMD-SHELL", "exit 0"], "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
        ecs.register_task_definition(cpu="256", memory="512", **container(healthCheck=check, stopTimeout=120,
                                                                          portMappings=[{"containerPort": 80},
                                                                                        {"containerPort": 9090}]))
        for bad in ({"interval": 4}, {"timeout": 61}, {"retries": 11}, {"startPeriod": 301}, {"command": ["curl"]}):
            self.assertEqual(code_of(ecs.register_task_definition, cpu="256", memory="512",
                                     **container(healthCheck=dict(check, **bad))), "ClientException", bad)
        for stop in (1, 121):
            self.assertEqual(code_of(ecs.register_task_definition, cpu="256", memory="512",
                                     **container(stopTimeout=stop)), "ClientException", stop)
        twice = container(portMappings=[{"containerPort": 80}, {"containerPort": 80}])
        self.assertEqual(code_of(ecs.register_task_definition, cpu="256", memory="512", **twice), "ClientException")

    def test_09b_idle_timeout_and_matcher_ranges(self):
        elb = C["elbv2"]
        net = Net(C)
        idle = lambda v: [{"Key": "idle_timeout.timeout_seconds", "Value": v}]
        elb.modify_load_balancer_attributes(LoadBalancerArn=net.lb, Attributes=idle("4000"))
        for bad in ("0", "4001", "x"):
            self.assertEqual(code_of(elb.modify_load_balancer_attributes, LoadBalancerArn=net.lb, Attributes=idle(bad)),
                             "InvalidConfigurationRequest", bad)
        elb.modify_target_group(TargetGroupArn=net.tg, Matcher={"HttpCode": "200,202"})
        for bad in ("600", "200,,300", "299-200", "199"):
            self.assertEqual(code_of(elb.modify_target_group, TargetGroupArn=net.tg, Matcher={"HttpCode": bad}),
                             "ValidationError", bad)
            self.assertEqual(code_of(elb.create_target_group, Name=name("tg"), Protocol="HTTP", Port=80, VpcId=net.vpc,
                                     TargetType="ip", Matcher={"HttpCode": bad}), "ValidationError", bad)

    def test_09_duplicate_listener(self):
        elb = C["elbv2"]
        net = Net(C)
        other = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=net.vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        self.assertEqual(code_of(elb.create_listener, LoadBalancerArn=net.lb, Protocol="HTTP", Port=80,
                                 DefaultActions=[{"Type": "forward", "TargetGroupArn": other}]), "DuplicateListener")
        same = elb.create_listener(LoadBalancerArn=net.lb, Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": net.tg}])
        self.assertEqual(same["Listeners"][0]["ListenerArn"], net.listener)  # idempotent, like AWS
        self.assertEqual(len(elb.describe_listeners(LoadBalancerArn=net.lb)["Listeners"]), 1)

    def test_11_security_group_checks(self):
        ec2 = C["ec2"]
        vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
        a = ec2.create_security_group(GroupName="alb", Description="a", VpcId=vpc)["GroupId"]
        b = ec2.create_security_group(GroupName="tasks", Description="b", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=b, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": a}]}])
        try:
            ec2.delete_security_group(GroupId=a)
            self.fail("expected DependencyViolation")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "DependencyViolation")
            self.assertEqual(e.response["Error"]["Message"], f"resource {a} has a dependent object")
        ec2.revoke_security_group_ingress(GroupId=b, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": a}]}])
        ec2.delete_security_group(GroupId=a)
        self.assertEqual(code_of(ec2.create_security_group, GroupName="tasks", Description="again", VpcId=vpc), "InvalidGroup.Duplicate")

    def test_12_log_retention_values(self):
        logs = C["logs"]
        g = name("/g")
        logs.create_log_group(logGroupName=g)
        self.assertEqual(code_of(logs.put_retention_policy, logGroupName=g, retentionInDays=2), "InvalidParameterException")
        self.assertEqual(code_of(logs.put_retention_policy, logGroupName=g, retentionInDays=45), "InvalidParameterException")
        logs.put_retention_policy(logGroupName=g, retentionInDays=14)

    def test_12b_update_cluster_settings_is_served_and_checked(self):
        """moto has no UpdateClusterSettings: the proxy serves it, and DescribeClusters shows the change."""
        ecs = C["ecs"]
        cluster = name("cl")
        ecs.create_cluster(clusterName=cluster, settings=[{"name": "containerInsights", "value": "disabled"}])
        out = ecs.update_cluster_settings(cluster=cluster, settings=[{"name": "containerInsights", "value": "enhanced"}])
        self.assertEqual(out["cluster"]["settings"], [{"name": "containerInsights", "value": "enhanced"}])
        seen = ecs.describe_clusters(clusters=[cluster], include=["SETTINGS"])["clusters"][0]["settings"]
        self.assertEqual(seen, [{"name": "containerInsights", "value": "enhanced"}])
        self.assertEqual(code_of(ecs.update_cluster_settings, cluster=cluster,
                                 settings=[{"name": "containerInsights", "value": "on"}]), "InvalidParameterException")
        self.assertEqual(code_of(ecs.update_cluster_settings, cluster=name("nope"),
                                 settings=[{"name": "containerInsights", "value": "enabled"}]), "ClusterNotFoundException")
        other = name("cl")
        ecs.create_cluster(clusterName=other)
        untouched = ecs.describe_clusters(clusters=[other], include=["SETTINGS"])["clusters"][0].get("settings", [])
        self.assertNotIn({"name": "containerInsights", "value": "enhanced"}, untouched, "only the named cluster changes")

    def test_13_delete_subnet_and_vpc_with_nat(self):
        ec2 = C["ec2"]
        net = Net(C, with_lb=False)
        try:
            ec2.delete_subnet(SubnetId=net.public[0])
            self.fail("expected DependencyViolation")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "DependencyViolation")
            self.assertIn(f"The subnet '{net.public[0]}' has dependencies", e.response["Error"]["Message"])
        self.assertEqual(code_of(ec2.delete_vpc, VpcId=net.vpc), "DependencyViolation")
        ec2.delete_nat_gateway(NatGatewayId=net.nat)
        self.assertEqual(code_of(ec2.delete_subnet, SubnetId=net.public[0]), "DependencyViolation")  # deleting
        wait_for(lambda: code_of(ec2.delete_subnet, SubnetId=net.public[0]) is None)

    def test_15_load_balancer_enis_linger(self):
        ec2, elb = C["ec2"], C["elbv2"]
        net = Net(C)
        self.assertEqual(code_of(ec2.delete_security_group, GroupId=net.lb_sg), "DependencyViolation")  # LB uses it
        self.assertEqual(code_of(ec2.delete_subnet, SubnetId=net.public[1]), "DependencyViolation")
        elb.delete_listener(ListenerArn=net.listener)
        t0 = time.time()
        elb.delete_load_balancer(LoadBalancerArn=net.lb)
        self.assertEqual(code_of(ec2.delete_security_group, GroupId=net.lb_sg), "DependencyViolation")
        self.assertEqual(code_of(ec2.delete_subnet, SubnetId=net.public[1]), "DependencyViolation")
        wait_for(lambda: code_of(ec2.delete_security_group, GroupId=net.lb_sg) is None)
        self.assertGreaterEqual(time.time() - t0, 120 * SCALE - TOL)
        ec2.delete_subnet(SubnetId=net.public[1])

    def test_15b_lingering_enis_are_listed_until_released(self):
        ec2, elb = C["ec2"], C["elbv2"]
        net = Net(C)
        description = "ELB " + net.lb.split(":loadbalancer/", 1)[1]
        by_description = lambda: ec2.describe_network_interfaces(  # noqa: E731
            Filters=[{"Name": "description", "Values": [description]}])["NetworkInterfaces"]
        by_group = lambda: ec2.describe_network_interfaces(  # noqa: E731
            Filters=[{"Name": "group-id", "Values": [net.lb_sg]}, {"Name": "vpc-id", "Values": [net.vpc]}])["NetworkInterfaces"]
        self.assertEqual(by_description(), [], "a live load balancer's ENIs are not modelled")
        elb.delete_listener(ListenerArn=net.listener)
        elb.delete_load_balancer(LoadBalancerArn=net.lb)
        enis = by_description()
        self.assertEqual(sorted(e["SubnetId"] for e in enis), sorted(net.public))
        self.assertEqual(enis[0]["Groups"][0]["GroupId"], net.lb_sg)
        self.assertEqual(len(by_group()), 2)
        other = ec2.describe_network_interfaces(Filters=[{"Name": "description", "Values": ["ELB app/other/1"]}])
        self.assertEqual(other["NetworkInterfaces"], [])
        wait_for(lambda: by_description() == [])
        self.assertIsNone(code_of(ec2.delete_security_group, GroupId=net.lb_sg), "listed ENIs and blocked deletes agree")

    def test_16_detach_igw_and_release_address_wait_for_nat(self):
        ec2 = C["ec2"]
        net = Net(C, with_lb=False)
        try:
            ec2.detach_internet_gateway(InternetGatewayId=net.igw, VpcId=net.vpc)
            self.fail("expected DependencyViolation")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "DependencyViolation")
            self.assertIn(f"Network {net.vpc} has some mapped public address(es)", e.response["Error"]["Message"])
        self.assertEqual(code_of(ec2.release_address, AllocationId=net.alloc), "InvalidIPAddress.InUse")
        ec2.delete_nat_gateway(NatGatewayId=net.nat)
        self.assertEqual(code_of(ec2.release_address, AllocationId=net.alloc), "InvalidIPAddress.InUse")
        self.assertEqual(code_of(ec2.detach_internet_gateway, InternetGatewayId=net.igw, VpcId=net.vpc), "DependencyViolation")
        wait_for(lambda: code_of(ec2.release_address, AllocationId=net.alloc) is None)
        ec2.detach_internet_gateway(InternetGatewayId=net.igw, VpcId=net.vpc)


class LogAndFaultTests(unittest.TestCase):

    def test_call_log_lines(self):
        logs = C["logs"]
        before = len(read_log(CALL_LOG))
        g = name("/g")
        logs.create_log_group(logGroupName=g)
        code_of(logs.put_retention_policy, logGroupName=g, retentionInDays=2)
        code_of(logs.create_log_group, logGroupName=g)  # moto's own error
        entries = read_log(CALL_LOG)[before:]
        self.assertEqual(len(entries), 3)
        for e in entries:
            self.assertEqual(set(e), {"service", "action", "start", "end", "status", "error", "injected"})
            self.assertIsInstance(e["start"], float)
            self.assertLessEqual(e["start"], e["end"])
            self.assertLess(abs(e["start"] - time.time()), 60)
        self.assertEqual([(e["service"], e["action"], e["status"], e["error"], e["injected"]) for e in entries], [
            ("logs", "CreateLogGroup", 200, None, False),
            ("logs", "PutRetentionPolicy", 400, "InvalidParameterException", True),
            ("logs", "CreateLogGroup", 400, "ResourceAlreadyExistsException", False),
        ])

    def test_fault_rate_and_determinism(self):
        url, log = start_proxy(MOTO, "--fault-rate", "0.3", "--fault-seed", "7")
        sts = clients(url)["sts"]
        outcome = []
        for _ in range(300):
            outcome.append(code_of(sts.get_caller_identity))
        faults = [o for o in outcome if o]
        self.assertTrue(60 <= len(faults) <= 120, len(faults))
        throttles = sum(1 for o in faults if o == "Throttling")
        self.assertTrue(0.6 <= throttles / len(faults) <= 0.95, (throttles, len(faults)))
        self.assertTrue(set(faults) <= {"Throttling", "InternalError", "ServiceUnavailable"}, set(faults))
        entries = read_log(log)
        self.assertEqual(len(entries), 300)
        self.assertEqual(sum(1 for e in entries if e["injected"]), len(faults))
        self.assertTrue(all(e["status"] in (500, 503) for e in entries if e["error"] in ("InternalError", "ServiceUnavailable")))
        # the same seed gives the same sequence
        url2, _ = start_proxy(MOTO, "--fault-rate", "0.3", "--fault-seed", "7")
        sts2 = clients(url2)["sts"]
        self.assertEqual([code_of(sts2.get_caller_identity) for _ in range(60)], outcome[:60])
        # JSON and EC2 protocols get their own throttling codes
        url3, _ = start_proxy(MOTO, "--fault-rate", "1.0", config={"fault_throttle_share": 1.0})
        c3 = clients(url3)
        self.assertEqual(code_of(c3["ecs"].list_clusters), "ThrottlingException")
        self.assertEqual(code_of(c3["dynamodb"].list_tables), "ThrottlingException")
        self.assertEqual(code_of(c3["ec2"].describe_vpcs), "RequestLimitExceeded")
        self.assertEqual(code_of(c3["elbv2"].describe_load_balancers), "Throttling")
        self.assertEqual(code_of(c3["acm"].list_certificates), "ThrottlingException")
        self.assertEqual(code_of(c3["aas"].describe_scalable_targets, ServiceNamespace="ecs"), "ThrottlingException")
        self.assertEqual(code_of(c3["route53"].list_hosted_zones), "Throttling")
        self.assertEqual(code_of(c3["s3"].list_buckets), "SlowDown")

    def test_faults_of_the_rest_services(self):
        url, log = start_proxy(MOTO, "--fault-rate", "1.0", config={"fault_throttle_share": 1.0, "route53_prior_request_share": 1.0})
        st, h, body = raw(url, "GET", "/2013-04-01/hostedzone", "route53")
        self.assertEqual(st, 400)
        self.assertRegex(body.decode(), r'^<\?xml version="1.0"\?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
                                        r"<Error><Type>Sender</Type><Code>PriorRequestNotComplete</Code><Message>[^<]+</Message></Error>")
        st, h, body = raw(url, "PUT", f"/{name('b')}/k?x-id=PutObject", "s3", b"data")
        self.assertEqual(st, 503)
        self.assertRegex(body.decode(), r"<Error><Code>SlowDown</Code><Message>Please reduce your request rate\.</Message>"
                                        r"<RequestId>[0-9A-F]{16}</RequestId><HostId>[0-9a-f]+</HostId></Error>$")
        st, h, body = raw(url, "HEAD", f"/{name('b')}", "s3")
        self.assertEqual((st, body), (503, b""))
        url5, log5 = start_proxy(MOTO, "--fault-rate", "1.0", config={"fault_throttle_share": 0.0})
        st, h, body = raw(url5, "GET", "/?x-id=ListBuckets", "s3")
        self.assertIn(st, (500, 503))
        self.assertIn(b"<Code>", body)
        got = [(e["service"], e["action"], e["status"], e["error"], e["injected"]) for e in read_log(log) + read_log(log5)]
        self.assertEqual(got[:3], [("route53", "ListHostedZones", 400, "PriorRequestNotComplete", True),
                                   ("s3", "PutObject", 503, "SlowDown", True), ("s3", "HeadBucket", 503, "SlowDown", True)])
        self.assertIn(got[3][3], ("InternalError", "ServiceUnavailable"))

    def test_freeze_after_an_s3_write(self):
        url, log = start_proxy(MOTO)
        bucket = name("frz")
        port = int(url.rsplit(":", 1)[1])

        def control(method, path):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(method, path)
            out = json.loads(conn.getresponse().read())
            conn.close()
            return out
        control("POST", "/realism/freeze?after=2")
        self.assertEqual(raw(url, "PUT", f"/{bucket}", "s3")[0], 200)  # mutation 1
        self.assertEqual(raw(url, "HEAD", f"/{bucket}", "s3")[0], 200)  # a read: not counted
        done = []
        worker = __import__("threading").Thread(target=lambda: done.append(
            raw(url, "PUT", f"/{bucket}/state.json?x-id=PutObject", "s3", b"{}", headers={"if-none-match": "*"})), daemon=True)
        worker.start()
        wait_for(lambda: control("GET", "/realism/frozen")["frozen"] == "PutObject")
        self.assertEqual(done, [])  # carried out, never answered
        direct = boto3.client("s3", endpoint_url=MOTO, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
        self.assertEqual(direct.get_object(Bucket=bucket, Key="state.json")["Body"].read(), b"{}")
        control("POST", "/realism/thaw")
        worker.join(5)
        self.assertEqual([(e["action"], e["status"]) for e in read_log(log)],
                         [("CreateBucket", 200), ("HeadBucket", 200), ("PutObject", 200)])

    def test_freeze_at_a_named_action(self):
        url, log = start_proxy(MOTO)
        port = int(url.rsplit(":", 1)[1])

        def control(method, path):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(method, path)
            out = json.loads(conn.getresponse().read())
            conn.close()
            return out
        c = clients(url)
        control("POST", "/realism/freeze?action=CreateLogGroup&nth=2")
        c["logs"].create_log_group(logGroupName=name("/frz-a"))  # its 1st: answered
        second = name("/frz-b")
        done = []
        worker = __import__("threading").Thread(
            target=lambda: done.append(c["logs"].create_log_group(logGroupName=second)), daemon=True)
        worker.start()
        wait_for(lambda: control("GET", "/realism/frozen")["frozen"] == "CreateLogGroup")
        self.assertEqual(done, [])  # carried out, never answered
        direct = boto3.client("logs", endpoint_url=MOTO, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        self.assertEqual([g["logGroupName"] for g in direct.describe_log_groups(logGroupNamePrefix=second)["logGroups"]],
                         [second])
        control("POST", "/realism/thaw")
        worker.join(5)
        # Thawed: nothing is held any more.
        c["logs"].create_log_group(logGroupName=name("/frz-c"))
        self.assertIsNone(control("GET", "/realism/frozen")["frozen"])

    def test_fault_filters(self):
        url, log = start_proxy(MOTO, "--fault-rate", "1.0", config={"fault_services": ["logs"], "fault_actions": ["DescribeLogGroups", "ec2:DescribeVpcs"]})
        c = clients(url)
        self.assertIsNotNone(code_of(c["logs"].describe_log_groups))
        self.assertIsNone(code_of(c["logs"].describe_destinations))
        self.assertIsNone(code_of(c["ec2"].describe_vpcs))  # service not in fault_services
        self.assertIsNone(code_of(c["ecs"].list_clusters))

    def test_boto3_retries_succeed_with_faults(self):
        url, log = start_proxy(MOTO, "--fault-rate", "0.1", "--fault-seed", "3")
        c = clients(url, attempts=10, mode="standard")
        for i in range(60):
            c["logs"].describe_log_groups()
        entries = read_log(log)
        injected = sum(1 for e in entries if e["injected"])
        self.assertGreater(injected, 0)
        self.assertEqual(len(entries) - injected, 60)

    def test_moto_reset_resets_overlay(self):
        url, log = start_proxy(MOTO, "--time-scale", str(SCALE), config={"table_deleting_s": 100000})
        c = clients(url)
        t = name("tbl")
        spec = dict(TableName=t, AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        c["dynamodb"].create_table(**spec)
        wait_for(lambda: c["dynamodb"].describe_table(TableName=t)["Table"]["TableStatus"] == "ACTIVE")
        c["dynamodb"].delete_table(TableName=t)
        self.assertEqual(code_of(c["dynamodb"].create_table, **spec), "ResourceInUseException")  # still DELETING
        zone = make_zone(c, f"{name('z')}.test")
        change = c["route53"].change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": f"a.{c['route53'].get_hosted_zone(Id=zone)['HostedZone']['Name']}", "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "192.0.2.1"}]}}]})["ChangeInfo"]["Id"]
        token = dict(DomainName="reset.example.org", ValidationMethod="DNS", IdempotencyToken="reset")
        cert = c["acm"].request_certificate(**token)["CertificateArn"]
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10).read()
        c["dynamodb"].create_table(**spec)
        self.assertEqual(read_log(log)[-2]["service"], "moto-api")
        self.assertEqual(code_of(c["route53"].get_change, Id=change), "NoSuchChange")
        self.assertNotEqual(c["acm"].request_certificate(**token)["CertificateArn"], cert)  # not the certificate moto forgot


class Alb:
    """A VPC with two subnets in two AZs, an ALB and an ip target group (no listener)."""

    def __init__(self, c):
        ec2, elb = c["ec2"], c["elbv2"]
        self.vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                   for i, z in ((1, "a"), (2, "b"))]
        lb = elb.create_load_balancer(Name=name("lb"), Subnets=subnets)["LoadBalancers"][0]
        self.lb, self.dns, self.zone = lb["LoadBalancerArn"], lb["DNSName"], lb["CanonicalHostedZoneId"]
        self.tg = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=self.vpc,
                                          TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]

    def forward(self):
        return [{"Type": "forward", "TargetGroupArn": self.tg}]


def make_zone(c, domain):
    return c["route53"].create_hosted_zone(Name=domain, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"].split("/")[-1]


def cert_of(c, arn):
    return c["acm"].describe_certificate(CertificateArn=arn)["Certificate"]


def publish_validation(c, arn, zone):
    """Wait for the certificate's validation records and create them in the zone."""
    options = wait_for(lambda: (lambda o: o if all("ResourceRecord" in x for x in o) else None)(
        cert_of(c, arn)["DomainValidationOptions"]))
    records = {(o["ResourceRecord"]["Name"], o["ResourceRecord"]["Value"]) for o in options}
    c["route53"].change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": n, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": v}]}}
        for n, v in sorted(records)]})
    return time.time()


def issued_cert(c, domain=None):
    domain = domain or f"{name('app')}.example.org"
    zone = make_zone(c, domain.split(".", 1)[1])
    arn = c["acm"].request_certificate(DomainName=domain, ValidationMethod="DNS")["CertificateArn"]
    publish_validation(c, arn, zone)
    wait_for(lambda: cert_of(c, arn)["Status"] == "ISSUED")
    return arn


class NewServiceWireTests(unittest.TestCase):
    """ACM, Route 53, Application Auto Scaling and S3 requests as the Rust SDK sends them."""

    def test_rest_action_names(self):
        s3 = lambda m, p, h=(): aws_realism.s3_action(m, p, dict(__import__("urllib.parse").parse.parse_qsl(
            p.split("?", 1)[1] if "?" in p else "", keep_blank_values=True)), list(h))
        self.assertEqual(s3("PUT", "/b"), "CreateBucket")
        self.assertEqual(s3("HEAD", "/b"), "HeadBucket")
        self.assertEqual(s3("GET", "/b?location"), "GetBucketLocation")
        self.assertEqual(s3("PUT", "/b?versioning"), "PutBucketVersioning")
        self.assertEqual(s3("GET", "/b?encryption"), "GetBucketEncryption")
        self.assertEqual(s3("PUT", "/b?publicAccessBlock"), "PutPublicAccessBlock")
        self.assertEqual(s3("GET", "/b?policy"), "GetBucketPolicy")
        self.assertEqual(s3("GET", "/b?list-type=2&prefix=x"), "ListObjectsV2")
        self.assertEqual(s3("GET", "/"), "ListBuckets")
        self.assertEqual(s3("PUT", "/b/k/with/slashes.json"), "PutObject")
        self.assertEqual(s3("PUT", "/b/k", [("x-amz-copy-source", "/b/j")]), "CopyObject")
        self.assertEqual(s3("GET", "/b/k"), "GetObject")
        self.assertEqual(s3("HEAD", "/b/k"), "HeadObject")
        self.assertEqual(s3("DELETE", "/b/k"), "DeleteObject")
        self.assertEqual(s3("POST", "/b?delete"), "DeleteObjects")
        self.assertEqual(s3("PUT", "/b/k?x-id=PutObject"), "PutObject")
        self.assertEqual(s3("GET", "/?x-id=ListBuckets"), "ListBuckets")
        r53 = aws_realism.route53_action
        self.assertEqual(r53("POST", "/2013-04-01/hostedzone/Z1/rrset"), "ChangeResourceRecordSets")
        self.assertEqual(r53("POST", "/2013-04-01/hostedzone/Z1/rrset/"), "ChangeResourceRecordSets")
        self.assertEqual(r53("GET", "/2013-04-01/hostedzone/Z1/rrset?name=a&type=A"), "ListResourceRecordSets")
        self.assertEqual(r53("GET", "/2013-04-01/hostedzonesbyname?dnsname=x"), "ListHostedZonesByName")
        self.assertEqual(r53("GET", "/2013-04-01/hostedzone"), "ListHostedZones")
        self.assertEqual(r53("GET", "/2013-04-01/hostedzone/Z1"), "GetHostedZone")
        self.assertEqual(r53("GET", "/2013-04-01/change/C123"), "GetChange")

    def test_rust_style_requests_are_identified(self):
        before = len(read_log(CALL_LOG))
        st, _, body = raw(PROXY_URL, "POST", "/", "acm", b"{}", target="CertificateManager.ListCertificates")
        self.assertEqual(st, 200, body)
        st, _, body = raw(PROXY_URL, "POST", "/", "application-autoscaling", b'{"ServiceNamespace": "ecs"}',
                          target="AnyScaleFrontendService.DescribeScalableTargets")
        self.assertEqual(st, 200, body)
        st, _, body = raw(PROXY_URL, "GET", "/2013-04-01/hostedzonesbyname?dnsname=nothing.test&maxitems=1", "route53")
        self.assertEqual(st, 200, body)
        self.assertIn(b"<IsTruncated>", body)
        batch = (b'<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/'
                 b'doc/2013-04-01/"><ChangeBatch><Changes></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>')
        st, _, body = raw(PROXY_URL, "POST", "/2013-04-01/hostedzone/ZNOPE/rrset", "route53", batch,
                          headers={"content-type": "application/xml"})
        self.assertEqual(st, 404, body)
        bucket = name("wire")
        st, _, body = raw(PROXY_URL, "PUT", f"/{bucket}", "s3")
        self.assertEqual(st, 200, body)
        blob = bytes(range(256)) * 4  # not text: the body must pass untouched
        st, _, body = raw(PROXY_URL, "PUT", f"/{bucket}/dir/state.bin?x-id=PutObject", "s3", blob)
        self.assertEqual(st, 200, body)
        st, h, body = raw(PROXY_URL, "HEAD", f"/{bucket}/dir/state.bin", "s3")
        self.assertEqual((st, h["content-length"], body), (200, str(len(blob)), b""))
        st, _, body = raw(PROXY_URL, "GET", f"/{bucket}/dir/state.bin?x-id=GetObject", "s3")
        self.assertEqual(body, blob)
        st, _, body = raw(PROXY_URL, "GET", f"/{bucket}?list-type=2&prefix=dir%2F", "s3")
        self.assertIn(b"<Key>dir/state.bin</Key>", body)
        st, h, body = raw(PROXY_URL, "HEAD", f"/{bucket}/missing", "s3")
        self.assertEqual((st, body), (404, b""))
        got = [(e["service"], e["action"], e["error"]) for e in read_log(CALL_LOG)[before:]]
        self.assertEqual(got, [("acm", "ListCertificates", None), ("application-autoscaling", "DescribeScalableTargets", None),
                               ("route53", "ListHostedZonesByName", None), ("route53", "ChangeResourceRecordSets", "NoSuchHostedZone"),
                               ("s3", "CreateBucket", None), ("s3", "PutObject", None), ("s3", "HeadObject", None),
                               ("s3", "GetObject", None), ("s3", "ListObjectsV2", None), ("s3", "HeadObject", "NotFound")])

    def test_error_wire_formats(self):
        zone = make_zone(C, f"{name('fmt')}.test")
        body = ('<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/'
                '2013-04-01/"><ChangeBatch><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>nope.{}</Name>'
                '<Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord>'
                '</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>')
        zname = C["route53"].get_hosted_zone(Id=zone)["HostedZone"]["Name"]
        st, h, out = raw(PROXY_URL, "POST", f"/2013-04-01/hostedzone/{zone}/rrset", "route53", body.format(zname).encode(),
                         headers={"content-type": "application/xml"})
        self.assertEqual(st, 400)
        self.assertRegex(out.decode(), r'^<\?xml version="1.0"\?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
                                       r"<Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>\[Tried to delete "
                                       r"resource record set \[name='nope\.[^']+', type='A'\] but it was not found\]</Message>"
                                       r"</Error><RequestId>[0-9a-f-]{36}</RequestId></ErrorResponse>$")
        st, h, out = raw(PROXY_URL, "PUT", "/Bad_Bucket", "s3")
        self.assertEqual(st, 400)
        self.assertRegex(out.decode(), r'^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidBucketName</Code>'
                                       r"<Message>The specified bucket is not valid.</Message><BucketName>Bad_Bucket</BucketName>"
                                       r"<RequestId>[0-9A-F]{16}</RequestId><HostId>[0-9a-f]+</HostId></Error>$")
        self.assertIn("x-amz-request-id", h)
        st, h, out = raw(PROXY_URL, "POST", "/", "acm", json.dumps({"CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}).encode(),
                         target="CertificateManager.DeleteCertificate")
        self.assertEqual((st, h.get("x-amzn-errortype")), (400, "ResourceNotFoundException"))


class AcmTests(unittest.TestCase):

    def test_certificate_waits_for_its_dns_record(self):
        acm = C["acm"]
        base = f"{name('site')}.example.org"
        domain = f"www.{base}"
        req = dict(DomainName=domain, ValidationMethod="DNS", SubjectAlternativeNames=[domain, f"*.{domain}"],
                   IdempotencyToken="tok" + uuid.uuid4().hex[:8], Tags=[{"Key": "stack", "Value": "t"}])
        arn = acm.request_certificate(**req)["CertificateArn"]
        t0 = time.time()
        cert = cert_of(C, arn)
        self.assertEqual(cert["Status"], "PENDING_VALIDATION")
        self.assertEqual([o["DomainName"] for o in cert["DomainValidationOptions"]], [domain, f"*.{domain}"])
        self.assertTrue(all("ResourceRecord" not in o for o in cert["DomainValidationOptions"]))  # not yet on AWS either
        self.assertNotIn("IssuedAt", cert)
        self.assertNotIn("NotAfter", cert)
        # the same token and domain within the hour: the same certificate (moto wants the same tags too)
        self.assertEqual(acm.request_certificate(DomainName=domain, ValidationMethod="DNS",
                                                 IdempotencyToken=req["IdempotencyToken"])["CertificateArn"], arn)
        self.assertNotEqual(acm.request_certificate(DomainName=f"other.{base}", ValidationMethod="DNS",
                                                    IdempotencyToken=req["IdempotencyToken"])["CertificateArn"], arn)
        options = wait_for(lambda: (lambda o: o if all("ResourceRecord" in x for x in o) else None)(
            cert_of(C, arn)["DomainValidationOptions"]))
        self.assertGreaterEqual(time.time() - t0, CONFIG["acm_record_delay_s"] * SCALE - TOL)
        self.assertEqual(len({o["ResourceRecord"]["Name"] for o in options}), 1)  # the wildcard shares the record
        self.assertTrue(options[0]["ResourceRecord"]["Name"].endswith(f".{domain}."))
        # a record with the right name and another value does not count
        zone = make_zone(C, base)
        C["route53"].change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": options[0]["ResourceRecord"]["Name"], "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "x.acm-validations.aws."}]}}]})
        time.sleep(CONFIG["acm_validation_s"] * SCALE + 0.05)
        self.assertEqual(cert_of(C, arn)["Status"], "PENDING_VALIDATION")
        t1 = publish_validation(C, arn, zone)
        self.assertEqual(cert_of(C, arn)["Status"], "PENDING_VALIDATION")
        self.assertIn(arn, [x["CertificateArn"] for x in acm.list_certificates(CertificateStatuses=["PENDING_VALIDATION"])["CertificateSummaryList"]])
        wait_for(lambda: cert_of(C, arn)["Status"] == "ISSUED")
        self.assertGreaterEqual(time.time() - t1, CONFIG["acm_validation_s"] * SCALE - TOL)
        cert = cert_of(C, arn)
        self.assertIn("IssuedAt", cert)
        self.assertEqual({o["ValidationStatus"] for o in cert["DomainValidationOptions"]}, {"SUCCESS"})
        issued = [x["CertificateArn"] for x in acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]]
        self.assertIn(arn, issued)
        self.assertEqual(acm.list_tags_for_certificate(CertificateArn=arn)["Tags"], [{"Key": "stack", "Value": "t"}])

    def test_listener_needs_an_issued_certificate_that_then_stays_in_use(self):
        acm, elb = C["acm"], C["elbv2"]
        alb = Alb(C)
        pending = acm.request_certificate(DomainName=f"{name('p')}.example.org", ValidationMethod="DNS")["CertificateArn"]
        listener = dict(LoadBalancerArn=alb.lb, Protocol="HTTPS", Port=443, DefaultActions=alb.forward())
        try:
            elb.create_listener(Certificates=[{"CertificateArn": pending}], **listener)
            self.fail("expected UnsupportedCertificate")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "UnsupportedCertificate")
            self.assertEqual(e.response["Error"]["Message"], f"The certificate '{pending}' must have a fully-qualified domain "
                                                             "name, a supported signature, and a supported key size.")
        self.assertEqual(code_of(elb.create_listener, **listener), "ValidationError")  # HTTPS without a certificate
        arn = issued_cert(C)
        lis = elb.create_listener(Certificates=[{"CertificateArn": arn}], **listener)["Listeners"][0]["ListenerArn"]
        self.assertEqual(cert_of(C, arn)["InUseBy"], [alb.lb])  # the load balancer, as on AWS
        summary = [x for x in acm.list_certificates()["CertificateSummaryList"] if x["CertificateArn"] == arn][0]
        self.assertTrue(summary["InUse"])
        try:
            acm.delete_certificate(CertificateArn=arn)
            self.fail("expected ResourceInUseException")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "ResourceInUseException")
            self.assertEqual(e.response["Error"]["Message"], f"Certificate {arn} in account 123456789012 is in use.")
        self.assertEqual(code_of(elb.modify_listener, ListenerArn=lis, Certificates=[{"CertificateArn": pending}]),
                         "UnsupportedCertificate")
        self.assertEqual(code_of(elb.add_listener_certificates, ListenerArn=lis, Certificates=[{"CertificateArn": pending}]),
                         "UnsupportedCertificate")
        other = issued_cert(C)
        t0 = time.time()
        elb.modify_listener(ListenerArn=lis, Certificates=[{"CertificateArn": other}])
        self.assertEqual(cert_of(C, other)["InUseBy"], [alb.lb])
        self.assertEqual(code_of(acm.delete_certificate, CertificateArn=arn), "ResourceInUseException")  # released just now
        wait_for(lambda: code_of(acm.delete_certificate, CertificateArn=arn) is None)
        self.assertGreaterEqual(time.time() - t0, CONFIG["acm_release_s"] * SCALE - TOL)
        elb.delete_load_balancer(LoadBalancerArn=alb.lb)  # takes its listeners with it
        self.assertEqual(code_of(acm.delete_certificate, CertificateArn=other), "ResourceInUseException")
        wait_for(lambda: cert_of(C, other)["InUseBy"] == [])
        acm.delete_certificate(CertificateArn=other)


class Route53Tests(unittest.TestCase):

    def change(self, zone, *changes):
        return C["route53"].change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": list(changes)})

    def error(self, zone, *changes):
        try:
            self.change(zone, *changes)
        except ClientError as e:
            return e.response["Error"]["Code"], e.response["Error"]["Message"]
        return None

    def test_change_is_pending_then_insync(self):
        r53 = C["route53"]
        zone = make_zone(C, f"{name('z')}.test")
        zname = r53.get_hosted_zone(Id=zone)["HostedZone"]["Name"]
        info = self.change(zone, {"Action": "CREATE", "ResourceRecordSet": {"Name": f"a.{zname}", "Type": "A", "TTL": 60,
                                                                            "ResourceRecords": [{"Value": "192.0.2.1"}]}})["ChangeInfo"]
        t0 = time.time()
        self.assertEqual(info["Status"], "PENDING")
        again = self.change(zone, {"Action": "UPSERT", "ResourceRecordSet": {"Name": f"a.{zname}", "Type": "A", "TTL": 60,
                                                                             "ResourceRecords": [{"Value": "192.0.2.2"}]}})["ChangeInfo"]
        self.assertNotEqual(again["Id"], info["Id"])  # moto reuses one id for every change
        self.assertEqual(r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"], "PENDING")
        wait_for(lambda: r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC")
        self.assertGreaterEqual(time.time() - t0, CONFIG["route53_change_s"] * SCALE - TOL)
        self.assertEqual(r53.get_change(Id=info["Id"])["ChangeInfo"]["Id"], info["Id"])
        self.assertEqual(code_of(r53.get_change, Id="CNOSUCHCHANGE"), "NoSuchChange")
        ref = uuid.uuid4().hex
        r53.create_hosted_zone(Name=f"{name('ref')}.test", CallerReference=ref)
        self.assertEqual(code_of(r53.create_hosted_zone, Name=f"{name('ref')}.test", CallerReference=ref), "HostedZoneAlreadyExists")

    def test_change_batches_are_judged_as_aws_does(self):
        r53 = C["route53"]
        zname = f"{name('z')}.test."
        zone = make_zone(C, zname)
        www = {"Name": f"www.{zname}", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "app.example.net"}]}
        self.change(zone, {"Action": "CREATE", "ResourceRecordSet": www})
        self.assertEqual(self.error(zone, {"Action": "CREATE", "ResourceRecordSet": dict(www, TTL=300)}),
                         ("InvalidChangeBatch", f"[Tried to create resource record set [name='www.{zname}', type='CNAME'] but it already exists]"))
        self.assertEqual(self.error(zone, {"Action": "DELETE", "ResourceRecordSet": dict(www, TTL=300)}),
                         ("InvalidChangeBatch", f"[Tried to delete resource record set [name='www.{zname}', type='CNAME'] but the values provided do not match the current values]"))
        code, message = self.error(zone, {"Action": "CREATE", "ResourceRecordSet": {"Name": f"www.{zname}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
                                   {"Action": "DELETE", "ResourceRecordSet": dict(www, Name=f"gone.{zname}")})
        self.assertEqual(code, "InvalidChangeBatch")
        self.assertEqual(message, f"[RRSet of type A with DNS name www.{zname} is not permitted because a conflicting RRSet of type CNAME "
                                  f"with the same DNS name already exists in zone {zname}, Tried to delete resource record set "
                                  f"[name='gone.{zname}', type='CNAME'] but it was not found]")
        self.assertEqual(self.error(zone, {"Action": "CREATE", "ResourceRecordSet": dict(www, Name=zname)})[0], "InvalidChangeBatch")  # apex CNAME
        # a batch is judged as a whole: replace the CNAME by an A record in one change
        self.change(zone, {"Action": "DELETE", "ResourceRecordSet": dict(www, Name=www["Name"].upper())},
                    {"Action": "CREATE", "ResourceRecordSet": {"Name": f"www.{zname}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}})
        self.change(zone, {"Action": "DELETE", "ResourceRecordSet": {"Name": f"www.{zname}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}})
        self.change(zone, {"Action": "CREATE", "ResourceRecordSet": www})  # again, after a delete (moto's journal says "exists")
        # alias records to a load balancer
        alb = Alb(C)
        alias = lambda t, z: {"Action": "CREATE", "ResourceRecordSet": {"Name": f"app.{zname}", "Type": t, "AliasTarget": {
            "HostedZoneId": z, "DNSName": f"dualstack.{alb.dns}", "EvaluateTargetHealth": True}}}
        code, message = self.error(zone, alias("A", "Z0000000WRONG"))
        self.assertEqual(message, f"[Tried to create an alias that targets dualstack.{alb.dns.lower()}., type A in zone Z0000000WRONG, "
                                  "but the alias target name does not lie within the target zone]")
        gone = {"Action": "CREATE", "ResourceRecordSet": {"Name": f"old.{zname}", "Type": "A", "AliasTarget": {
            "HostedZoneId": alb.zone, "DNSName": "dualstack.nope-1.us-east-1.elb.amazonaws.com", "EvaluateTargetHealth": False}}}
        self.assertIn("but that target was not found", self.error(zone, gone)[1])
        self.change(zone, alias("A", alb.zone), alias("AAAA", alb.zone))
        sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        app = [x for x in sets if x["Name"] == f"app.{zname}"]
        self.assertEqual([x["AliasTarget"]["DNSName"] for x in app], [f"dualstack.{alb.dns.lower()}."] * 2)
        soa = [x for x in sets if x["Type"] == "SOA"][0]["ResourceRecords"][0]["Value"]
        self.assertTrue(soa.startswith("ns-"), soa)
        self.change(zone, {"Action": "CREATE", "ResourceRecordSet": {"Name": f"*.{zname}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.9"}]}})
        names = [x["Name"] for x in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]]
        self.assertIn(f"\\052.{zname}", names)

    def test_list_hosted_zones_by_name_from_a_name_on(self):
        r53 = C["route53"]
        tld = name("tld")
        zones = {n: make_zone(C, f"{n}.{tld}") for n in ("alpha", "beta", "gamma")}
        out = r53.list_hosted_zones_by_name(DNSName=f"beta.{tld}", MaxItems="1")
        self.assertEqual([z["Name"] for z in out["HostedZones"]], [f"beta.{tld}."])
        self.assertTrue(out["IsTruncated"])
        self.assertEqual((out["NextDNSName"], out["NextHostedZoneId"]), (f"gamma.{tld}.", zones["gamma"]))
        # a name without a zone: AWS starts with the next zone in order, so the caller must check the name
        out = r53.list_hosted_zones_by_name(DNSName=f"b.{tld}", MaxItems="1")
        self.assertEqual(out["HostedZones"][0]["Name"], f"beta.{tld}.")


class AutoScalingTests(unittest.TestCase):

    def target(self, rid, **kw):
        return dict(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension="ecs:service:DesiredCount", **kw)

    def test_scalable_target_follows_the_service(self):
        aas, ecs, iam = C["aas"], C["ecs"], C["iam"]
        net = Net(C, with_lb=False)
        app = Ecs(C)
        svc = name("svc")
        ecs.create_service(**app.service_args(net, svc, desired=0, lb=False))
        rid = f"service/{app.cluster}/{svc}"
        try:  # just created: App Auto Scaling does not see it yet (Terraform retries this message)
            aas.register_scalable_target(MinCapacity=1, MaxCapacity=4, **self.target(rid))
            self.fail("expected ValidationException")
        except ClientError as e:
            self.assertEqual((e.response["Error"]["Code"], e.response["Error"]["Message"]),
                             ("ValidationException", f"ECS service doesn't exist: {rid}"))
        self.assertEqual(code_of(aas.register_scalable_target, MinCapacity=1, MaxCapacity=4,
                                 **self.target(f"service/{name('nocluster')}/x")), "ValidationException")
        time.sleep(CONFIG["aas_service_visible_s"] * SCALE + TOL)
        self.assertEqual(code_of(aas.register_scalable_target, MinCapacity=5, MaxCapacity=1, **self.target(rid)), "ValidationException")
        arn = aas.register_scalable_target(MinCapacity=1, MaxCapacity=4, Tags={"stack": "t"}, **self.target(rid))["ScalableTargetARN"]
        role = iam.get_role(RoleName="AWSServiceRoleForApplicationAutoScaling_ECSService")["Role"]
        self.assertEqual(role["Path"], "/aws-service-role/ecs.application-autoscaling.amazonaws.com/")
        got = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[rid])["ScalableTargets"][0]
        self.assertEqual(got["RoleARN"], role["Arn"])
        self.assertEqual(aas.list_tags_for_resource(ResourceARN=arn)["Tags"], {"stack": "t"})
        aas.tag_resource(ResourceARN=arn, Tags={"owner": "me"})
        aas.untag_resource(ResourceARN=arn, TagKeys=["stack"])
        self.assertEqual(aas.list_tags_for_resource(ResourceARN=arn)["Tags"], {"owner": "me"})
        self.assertEqual(code_of(aas.list_tags_for_resource, ResourceARN=arn + "x"), "ResourceNotFoundException")
        cpu = dict(PolicyName="cpu", PolicyType="TargetTrackingScaling", **self.target(rid),
                   TargetTrackingScalingPolicyConfiguration={"TargetValue": 60.0, "ScaleInCooldown": 60, "ScaleOutCooldown": 30,
                                                             "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
        first = aas.put_scaling_policy(**cpu)["PolicyARN"]
        cpu["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] = 70.0
        self.assertEqual(aas.put_scaling_policy(**cpu)["PolicyARN"], first)  # an update keeps the ARN
        self.assertEqual(code_of(aas.put_scaling_policy, **dict(cpu, ResourceId=f"service/{app.cluster}/other")), "ObjectNotFoundException")
        # ALBRequestCountPerTarget needs app/<lb>/<id>/targetgroup/<tg>/<id> of a target group behind that load balancer
        alb = Alb(C)
        C["elbv2"].create_listener(LoadBalancerArn=alb.lb, Protocol="HTTP", Port=80, DefaultActions=alb.forward())
        label = alb.lb.split(":loadbalancer/")[1] + "/" + alb.tg.split(":")[-1]
        req = lambda lab: dict(PolicyName="requests", PolicyType="TargetTrackingScaling", **self.target(rid),
                               TargetTrackingScalingPolicyConfiguration={"TargetValue": 500.0, "PredefinedMetricSpecification": dict(
                                   {"PredefinedMetricType": "ALBRequestCountPerTarget"}, **({"ResourceLabel": lab} if lab else {}))})
        self.assertEqual(code_of(aas.put_scaling_policy, **req(None)), "ValidationException")
        self.assertEqual(code_of(aas.put_scaling_policy, **req(alb.tg.split(":")[-1])), "ValidationException")
        lonely = C["elbv2"].create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=alb.vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        self.assertEqual(code_of(aas.put_scaling_policy, **req(alb.lb.split(":loadbalancer/")[1] + "/" + lonely.split(":")[-1])), "ValidationException")
        aas.put_scaling_policy(**req(label))
        self.assertEqual([p["PolicyName"] for p in aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=rid, PolicyNames=["cpu"])["ScalingPolicies"]], ["cpu"])
        # scheduled actions keep their time zone and range; deleting one that is not there is ObjectNotFoundException
        night = dict(ScheduledActionName="night", Schedule="cron(0 20 ? * MON-FRI *)", Timezone="Europe/Berlin",
                     ScalableTargetAction={"MinCapacity": 0, "MaxCapacity": 0}, **self.target(rid))
        aas.put_scheduled_action(**night)
        got = aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=rid)["ScheduledActions"]
        self.assertEqual([(a["ScheduledActionName"], a["Schedule"], a["Timezone"], a["ScalableTargetAction"]) for a in got],
                         [("night", "cron(0 20 ? * MON-FRI *)", "Europe/Berlin", {"MinCapacity": 0, "MaxCapacity": 0})])
        self.assertEqual(code_of(aas.delete_scheduled_action, ScheduledActionName="day", **self.target(rid)),
                         "ObjectNotFoundException")
        # the target and its policies outlive the service until deregistered (force: registering with
        # MinCapacity=1 scaled the service from 0 to 1)
        ecs.delete_service(cluster=app.cluster, service=svc, force=True)
        wait_for(lambda: describe_service(C, app.cluster, svc)["status"] == "INACTIVE")
        self.assertEqual(len(aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[rid])["ScalableTargets"]), 1)
        self.assertEqual(code_of(aas.register_scalable_target, MinCapacity=1, MaxCapacity=4, **self.target(rid)), "ValidationException")
        self.assertEqual(len(aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=rid)["ScalingPolicies"]), 2)
        aas.deregister_scalable_target(**self.target(rid))
        self.assertEqual(aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=rid)["ScalingPolicies"], [])
        self.assertEqual(aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=rid)["ScheduledActions"], [])
        self.assertEqual(code_of(aas.deregister_scalable_target, **self.target(rid)), "ObjectNotFoundException")
        self.assertEqual(code_of(aas.delete_scaling_policy, PolicyName="cpu", **self.target(rid)), "ObjectNotFoundException")


class S3Tests(unittest.TestCase):

    def test_new_bucket_has_aws_defaults_and_checks(self):
        s3 = C["s3"]
        for bad in ("Upper", "under_score", "ab", "two..dots", "192.168.5.4", "xn--bucket", "bucket-s3alias"):
            self.assertEqual(code_of(s3.create_bucket, Bucket=bad), "InvalidBucketName", bad)
        bucket = name("state")
        s3.create_bucket(Bucket=bucket)
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        self.assertEqual(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")
        self.assertEqual(set(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values()), {True})
        self.assertEqual(code_of(s3.put_bucket_policy, Bucket=bucket, Policy="not json"), "MalformedPolicy")
        public = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                          "Resource": f"arn:aws:s3:::{bucket}/*"}]}
        self.assertEqual(code_of(s3.put_bucket_policy, Bucket=bucket, Policy=json.dumps(public)), "AccessDenied")
        tls_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                                                            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only))
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self.assertEqual(s3.get_bucket_versioning(Bucket=bucket)["Status"], "Enabled")
        self.assertIsNone(s3.get_bucket_location(Bucket=bucket)["LocationConstraint"])

    def test_lock_object_with_conditional_writes(self):
        s3 = C["s3"]
        bucket = name("lock")
        s3.create_bucket(Bucket=bucket)
        first = s3.put_object(Bucket=bucket, Key="state.lock", Body=b"holder-1", IfNoneMatch="*")
        self.assertRegex(first["ETag"], r'^"[0-9a-f]{32}"$')
        self.assertEqual(first["ServerSideEncryption"], "AES256")
        self.assertEqual(code_of(s3.put_object, Bucket=bucket, Key="state.lock", Body=b"holder-2", IfNoneMatch="*"), "PreconditionFailed")
        self.assertEqual(code_of(s3.put_object, Bucket=bucket, Key="state.lock", Body=b"x", IfNoneMatch=first["ETag"]), "NotImplemented")
        head = s3.head_object(Bucket=bucket, Key="state.lock")
        self.assertEqual((head["ETag"], head["ContentLength"]), (first["ETag"], 8))
        second = s3.put_object(Bucket=bucket, Key="state.lock", Body=b"holder-1-renewed", IfMatch=first["ETag"])
        self.assertEqual(code_of(s3.put_object, Bucket=bucket, Key="state.lock", Body=b"late", IfMatch=first["ETag"]), "PreconditionFailed")
        self.assertEqual(code_of(s3.delete_object, Bucket=bucket, Key="state.lock", IfMatch=first["ETag"]), "PreconditionFailed")
        s3.delete_object(Bucket=bucket, Key="state.lock", IfMatch=second["ETag"])
        self.assertEqual(code_of(s3.head_object, Bucket=bucket, Key="state.lock"), "404")
        s3.put_object(Bucket=bucket, Key="state.lock", Body=b"holder-2", IfNoneMatch="*")

    def test_conditional_write_conflicts(self):
        url, log = start_proxy(MOTO, config={"s3_conditional_conflict_rate": 1.0})
        s3 = clients(url)["s3"]
        bucket = name("race")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="plain", Body=b"x")  # unconditional writes are not affected
        try:
            s3.put_object(Bucket=bucket, Key="state.lock", Body=b"me", IfNoneMatch="*")
            self.fail("expected ConditionalRequestConflict")
        except ClientError as e:
            self.assertEqual((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]),
                             ("ConditionalRequestConflict", 409))
        self.assertEqual(code_of(s3.head_object, Bucket=bucket, Key="state.lock"), "404")  # not carried out
        etag = s3.head_object(Bucket=bucket, Key="plain")["ETag"]
        self.assertEqual(code_of(s3.delete_object, Bucket=bucket, Key="plain", IfMatch=etag), "ConditionalRequestConflict")

    def test_versioning_answers_in_s3s_shape(self):
        bucket = name("ver")
        C["s3"].create_bucket(Bucket=bucket)
        C["s3"].put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        st, _, body = raw(PROXY_URL, "GET", f"/{bucket}?versioning", "s3")
        self.assertEqual(st, 200)
        self.assertRegex(body.decode(), r"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                                        r"<Status>Enabled</Status></VersioningConfiguration>$")

    def test_a_tls_only_policy_lets_requests_through(self):
        s3 = C["s3"]
        bucket = name("tls")
        s3.create_bucket(Bucket=bucket)
        tls_only = {"Version": "2012-10-17", "Statement": [{"Sid": "TLS", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                                                            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only))
        s3.put_object(Bucket=bucket, Key="state.json", Body=b"{}", IfNoneMatch="*")  # moto alone: AccessDenied
        self.assertEqual(s3.get_object(Bucket=bucket, Key="state.json")["Body"].read(), b"{}")
        self.assertEqual(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]), tls_only)
        # A policy without conditions still goes to moto whole (and replaces the kept one).
        deny_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                                                            "Resource": f"arn:aws:s3:::{bucket}/*"}]}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny_all))
        self.assertIn(code_of(s3.get_object, Bucket=bucket, Key="state.json"), ("AccessDenied", "403"))
        s3.delete_bucket_policy(Bucket=bucket)
        self.assertEqual(code_of(s3.get_bucket_policy, Bucket=bucket), "NoSuchBucketPolicy")

    def test_denied_buckets_answer_403(self):
        url, log = start_proxy(MOTO, config={"s3_denied_buckets": ["theirs-state"]})
        s3 = clients(url)["s3"]
        C["s3"].create_bucket(Bucket="theirs-state")
        for call, kwargs in ((s3.head_bucket, {}), (s3.get_object, {"Key": "k"}),
                             (s3.put_object, {"Key": "k", "Body": b"x", "IfNoneMatch": "*"})):
            self.assertIn(code_of(call, Bucket="theirs-state", **kwargs), ("AccessDenied", "403"), call)
        st, _, body = raw(url, "HEAD", "/theirs-state", "s3")
        self.assertEqual((st, body), (403, b""))
        self.assertEqual(code_of(C["s3"].head_object, Bucket="theirs-state", Key="k"), "404")  # nothing was written
        self.assertEqual(read_log(log)[-1]["error"], "AccessDenied")

    def test_a_wrong_expected_bucket_owner_answers_403(self):
        theirs, ours = name("theirs"), name("ours")
        st, _, _ = raw(PROXY_URL, "PUT", f"/{theirs}", "s3", headers={"x-moto-account-id": "111111111111"})
        self.assertEqual(st, 200)
        s3 = C["s3"]
        s3.create_bucket(Bucket=ours)
        me = C["sts"].get_caller_identity()["Account"]
        self.assertNotEqual(me, "111111111111")
        s3.put_object(Bucket=theirs, Key="k", Body=b"x")  # moto serves another account's bucket
        for call, kwargs in ((s3.head_bucket, {}), (s3.get_object, {"Key": "k"}),
                             (s3.put_object, {"Key": "k", "Body": b"y", "IfMatch": '"x"'}),
                             (s3.delete_object, {"Key": "k"})):
            self.assertIn(code_of(call, Bucket=theirs, ExpectedBucketOwner=me, **kwargs), ("AccessDenied", "403"), call)
        st, _, body = raw(PROXY_URL, "HEAD", f"/{theirs}", "s3", headers={"x-amz-expected-bucket-owner": me})
        self.assertEqual((st, body), (403, b""))
        self.assertEqual(s3.get_object(Bucket=theirs, Key="k")["Body"].read(), b"x")  # untouched
        self.assertEqual(s3.head_bucket(Bucket=theirs, ExpectedBucketOwner="111111111111")["ResponseMetadata"]["HTTPStatusCode"], 200)
        s3.put_object(Bucket=ours, Key="k", Body=b"x", ExpectedBucketOwner=me)
        self.assertEqual(code_of(s3.get_object, Bucket=ours, Key="k", ExpectedBucketOwner="111111111111"), "AccessDenied")
        self.assertEqual(code_of(s3.head_bucket, Bucket=name("none"), ExpectedBucketOwner=me), "404")

    def test_requests_for_another_region(self):
        eu = boto3.client("s3", endpoint_url=PROXY_URL, region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))
        bucket = name("eu")
        eu.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.assertEqual(code_of(eu.create_bucket, Bucket=name("x"), CreateBucketConfiguration={"LocationConstraint": "us-west-2"}),
                         "IllegalLocationConstraintException")
        eu.put_object(Bucket=bucket, Key="k", Body=b"v")
        # the Rust SDK does not follow S3's region redirects: raw requests signed for us-east-1
        st, h, body = raw(PROXY_URL, "GET", f"/{bucket}/k?x-id=GetObject", "s3")
        self.assertEqual((st, h.get("x-amz-bucket-region")), (301, "eu-west-1"))
        self.assertRegex(body.decode(), r"<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must "
                                        rf"be addressed using the specified endpoint\. Please send all future requests to this "
                                        rf"endpoint\.</Message><Endpoint>{bucket}\.s3\.eu-west-1\.amazonaws\.com</Endpoint>"
                                        rf"<Bucket>{bucket}</Bucket>")
        st, h, body = raw(PROXY_URL, "HEAD", f"/{bucket}", "s3")
        self.assertEqual((st, h.get("x-amz-bucket-region"), body), (301, "eu-west-1", b""))
        self.assertEqual(read_log(CALL_LOG)[-1]["error"], "PermanentRedirect")
        st, _, body = raw(PROXY_URL, "GET", f"/{bucket}?location", "s3")  # answered from any region
        self.assertEqual(st, 200)
        self.assertIn(b"eu-west-1", body)
        st, _, body = raw(PROXY_URL, "GET", f"/{bucket}/k?x-id=GetObject", "s3", region="eu-west-1")
        self.assertEqual((st, body), (200, b"v"))
        url, _ = start_proxy(MOTO, config={"s3_region_mismatch": "malformed"})
        st, h, body = raw(url, "GET", f"/{bucket}?list-type=2", "s3")
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region "
                      b"'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region>", body)


class AutoScalingEcsTests(unittest.TestCase):
    """What registering does to the service, and what a target just registered can and cannot do yet."""

    target = AutoScalingTests.target

    def service(self, desired):
        net = Net(C, with_lb=False)
        app = Ecs(C)
        svc = name("svc")
        C["ecs"].create_service(**app.service_args(net, svc, desired=desired, lb=False))
        time.sleep(CONFIG["aas_service_visible_s"] * SCALE + TOL)
        return app.cluster, svc

    def test_registration_moves_the_desired_count_into_the_range(self):
        aas = C["application-autoscaling"]
        cluster, svc = self.service(desired=2)
        rid = f"service/{cluster}/{svc}"
        desired = lambda: describe_service(C, cluster, svc)["desiredCount"]
        aas.register_scalable_target(MinCapacity=3, MaxCapacity=6, **self.target(rid))
        self.assertEqual(desired(), 3)
        out = describe_service(C, cluster, svc)
        self.assertEqual(out["pendingCount"] + out["runningCount"], 3, "the new task is starting")
        aas.register_scalable_target(MinCapacity=1, MaxCapacity=10, **self.target(rid))
        self.assertEqual(desired(), 3, "inside the range: left alone")
        C["ecs"].update_service(cluster=cluster, service=svc, desiredCount=9)
        aas.register_scalable_target(MinCapacity=1, MaxCapacity=4, **self.target(rid))
        self.assertEqual(desired(), 4)
        # Only on registration: a count set outside the range afterwards stays until something scales.
        C["ecs"].update_service(cluster=cluster, service=svc, desiredCount=7)
        self.assertEqual(desired(), 7)
        aas.deregister_scalable_target(**self.target(rid))

    def test_a_new_target_is_not_visible_to_put_scaling_policy_at_once(self):
        cluster, svc = self.service(desired=1)
        url, _ = start_proxy(MOTO, "--time-scale", str(SCALE), config={"aas_target_visible_s": 30})
        aas = clients(url)["application-autoscaling"]
        rid = f"service/{cluster}/{svc}"
        policy = dict(PolicyName="cpu", PolicyType="TargetTrackingScaling", **self.target(rid),
                      TargetTrackingScalingPolicyConfiguration={"TargetValue": 50.0, "PredefinedMetricSpecification": {
                          "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
        registered = time.time()
        aas.register_scalable_target(MinCapacity=1, MaxCapacity=3, **self.target(rid))
        self.assertEqual(code_of(aas.put_scaling_policy, **policy), "ObjectNotFoundException")
        self.assertLess(time.time(), registered + 30 * SCALE, "refused inside the window")
        # An update of the target does not open the window again.
        time.sleep(max(0.0, registered + 30 * SCALE + TOL - time.time()))
        aas.register_scalable_target(MinCapacity=1, MaxCapacity=4, **self.target(rid))
        self.assertTrue(aas.put_scaling_policy(**policy)["PolicyARN"])
        aas.deregister_scalable_target(**self.target(rid))
        aas.register_scalable_target(MinCapacity=1, MaxCapacity=3, **self.target(rid))
        self.assertEqual(code_of(aas.put_scaling_policy, **policy), "ObjectNotFoundException", "registered anew")
        aas.deregister_scalable_target(**self.target(rid))

    def test_scheduled_actions_need_their_target_and_go_with_it(self):
        cluster, svc = self.service(desired=1)
        aas = C["application-autoscaling"]
        rid = f"service/{cluster}/{svc}"
        action = dict(ScheduledActionName="nights", Schedule="cron(0 20 ? * MON-FRI *)", Timezone="Europe/Paris",
                      ScalableTargetAction={"MinCapacity": 0, "MaxCapacity": 0}, **self.target(rid))
        self.assertEqual(code_of(aas.put_scheduled_action, **action), "ObjectNotFoundException")
        aas.register_scalable_target(MinCapacity=1, MaxCapacity=3, **self.target(rid))
        aas.put_scheduled_action(**action)
        listed = lambda: aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=rid)["ScheduledActions"]
        self.assertEqual([a["ScheduledActionName"] for a in listed()], ["nights"])
        aas.deregister_scalable_target(**self.target(rid))
        self.assertEqual(listed(), [], "deregistering the target deletes its scheduled actions")


class IamGateTests(unittest.TestCase):
    """Action-level IAM: a key mapped to a policy file gets AWS's denial, per protocol, for any other call."""

    PRINCIPAL = "arn:aws:iam::123456789012:user/ci"

    @classmethod
    def setUpClass(cls):
        cls.policy_path = os.path.join(_tmp.name, f"policy-{uuid.uuid4().hex[:8]}.json")
        cls.write(["ec2:Describe*", "ec2:CreateVpc", "ecs:RegisterTaskDefinition", "iam:SimulatePrincipalPolicy",
                   "s3:GetObject"])
        config = dict(CONFIG, iam_policies={"AKIDCI0000000000TEST": {"principal": cls.PRINCIPAL,
                                                                      "policy_file": cls.policy_path}})
        cls.url, cls.log = start_proxy(MOTO, "--time-scale", str(SCALE), config=config)
        cls.admin = clients(cls.url)
        cls.ci = clients(cls.url)
        for name_, c in list(cls.ci.items()):
            cls.ci[name_] = boto3.client(c.meta.service_model.service_name, endpoint_url=cls.url, region_name="us-east-1",
                                         aws_access_key_id="AKIDCI0000000000TEST", aws_secret_access_key="x",
                                         config=Config(retries={"total_max_attempts": 1},
                                                       s3={"addressing_style": "path"}))

    @classmethod
    def write(cls, actions, deny=()):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}
        if deny:
            doc["Statement"].append({"Effect": "Deny", "Action": list(deny), "Resource": "*"})
        with open(cls.policy_path + ".new", "w") as f:
            json.dump(doc, f)
        os.replace(cls.policy_path + ".new", cls.policy_path)
        time.sleep(0.01)  # a new mtime

    def denial(self, fn, *args, **kwargs):
        with self.assertRaises(ClientError) as e:
            fn(*args, **kwargs)
        r = e.exception.response
        return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message", "")

    def test_each_protocol_gets_awss_own_denial_naming_the_action(self):
        status, code, message = self.denial(self.ci["iam"].create_role, RoleName=name(),
                                            AssumeRolePolicyDocument="{}")
        self.assertEqual((status, code), (403, "AccessDenied"))
        self.assertIn(f"User: {self.PRINCIPAL} is not authorized to perform: iam:CreateRole because no "
                      "identity-based policy allows the iam:CreateRole action", message)
        status, code, message = self.denial(self.ci["ecs"].create_cluster, clusterName=name())
        self.assertEqual((status, code), (400, "AccessDeniedException"))
        self.assertIn("ecs:CreateCluster", message)
        status, code, message = self.denial(self.ci["dynamodb"].list_tables)
        self.assertEqual((status, code), (400, "AccessDeniedException"))
        self.assertIn("dynamodb:ListTables", message)
        status, code, message = self.denial(self.ci["elbv2"].describe_load_balancers)
        self.assertEqual((status, code), (403, "AccessDenied"))
        self.assertIn("elasticloadbalancing:DescribeLoadBalancers", message)
        status, code, message = self.denial(self.ci["ec2"].create_subnet, VpcId="vpc-1", CidrBlock="10.0.0.0/24")
        self.assertEqual((status, code), (403, "UnauthorizedOperation"))
        self.assertIn("ec2:CreateSubnet because", message)
        self.assertIn("Encoded authorization failure message", message)
        # S3: the action is the IAM name (HeadBucket is s3:ListBucket), and HEAD has no body.
        status, code, _ = self.denial(self.ci["s3"].head_bucket, Bucket="nobucket")
        self.assertEqual((status, code), (403, "403"))
        entries = [e for e in read_log(self.log) if e["error"] in ("AccessDenied", "AccessDeniedException",
                                                                       "UnauthorizedOperation")]
        self.assertGreaterEqual(len(entries), 5)

    def test_allowed_calls_pass_and_a_denied_one_changes_nothing(self):
        before = len(self.admin["ec2"].describe_vpcs()["Vpcs"])
        vpc = self.ci["ec2"].create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        self.assertEqual(len(self.admin["ec2"].describe_vpcs()["Vpcs"]), before + 1)
        self.admin["ec2"].delete_vpc(VpcId=vpc)
        # Tags sent with a create need the tagging action too, and the create does not happen.
        _, code, message = self.denial(self.ci["ec2"].create_vpc, CidrBlock="10.8.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "fargate-stack:stack", "Value": "x"}]}])
        self.assertEqual(code, "UnauthorizedOperation")
        self.assertIn("ec2:CreateTags", message)
        self.assertEqual(len(self.admin["ec2"].describe_vpcs()["Vpcs"]), before)
        # The caller's identity needs no permission.
        self.assertEqual(self.ci["sts"].get_caller_identity()["Account"], "123456789012")

    def test_passing_roles_to_ecs_needs_pass_role_and_the_file_is_read_again(self):
        role = "arn:aws:iam::123456789012:role/s-execution-role"
        register = dict(family=name(), containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}],
                        requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
                        executionRoleArn=role)
        _, code, message = self.denial(self.ci["ecs"].register_task_definition, **register)
        self.assertEqual(code, "AccessDeniedException")
        self.assertIn(f"iam:PassRole on resource: {role}", message)
        self.write(["ec2:Describe*", "ec2:CreateVpc", "ecs:RegisterTaskDefinition", "iam:PassRole",
                    "iam:SimulatePrincipalPolicy"])
        try:
            self.ci["ecs"].register_task_definition(**register)
            # An explicit Deny wins over any Allow, and says so.
            self.write(["ec2:*"], deny=["ec2:createvpc"])
            _, code, message = self.denial(self.ci["ec2"].create_vpc, CidrBlock="10.7.0.0/16")
            self.assertIn("with an explicit deny", message)
        finally:
            self.write(["ec2:Describe*", "ec2:CreateVpc", "ecs:RegisterTaskDefinition", "iam:SimulatePrincipalPolicy",
                        "s3:GetObject"])

    def test_simulate_principal_policy_answers_from_the_policy(self):
        out = self.ci["iam"].simulate_principal_policy(
            PolicySourceArn=self.PRINCIPAL, ActionNames=["ec2:DescribeVpcs", "ec2:DeleteVpc", "ECS:registertaskdefinition"])
        decisions = {r["EvalActionName"]: r["EvalDecision"] for r in out["EvaluationResults"]}
        self.assertEqual(decisions, {"ec2:DescribeVpcs": "allowed", "ec2:DeleteVpc": "implicitDeny",
                                     "ECS:registertaskdefinition": "allowed"})
        code = code_of(self.ci["iam"].simulate_principal_policy, PolicySourceArn="arn:aws:iam::123456789012:user/other",
                       ActionNames=["ec2:DescribeVpcs"])
        self.assertEqual(code, "NoSuchEntity")

    def test_policy_decisions_match_case_insensitively_with_wildcards(self):
        path = os.path.join(_tmp.name, "p.json")
        with open(path, "w") as f:
            json.dump({"Statement": {"Effect": "Allow", "Action": ["EC2:Describe*", "s3:?etObject"]}}, f)
        p = aws_realism.IamPolicy(path)
        self.assertEqual(p.decision("ec2:DescribeVpcs"), "allowed")
        self.assertEqual(p.decision("s3:GetObject"), "allowed")
        self.assertEqual(p.decision("s3:PutObject"), "implicitDeny")
        self.assertEqual(p.decision("Ec2:describevpcs"), "allowed")


def load_tests(loader, tests, pattern):
    # the reset test clears moto for everybody: run it last
    suite, last = unittest.TestSuite(), []
    for group in (WireTests, NewServiceWireTests, StateTests, EcsServiceTests, CheckTests, AcmTests,
                  Route53Tests, AutoScalingTests, AutoScalingEcsTests, S3Tests, IamGateTests, LogAndFaultTests,
                  PricingTests, EcsOperateTests, CborTests, EcsStrategyTests):
        for t in loader.loadTestsFromTestCase(group):
            (last.append if "reset" in t.id() else suite.addTest)(t)
    suite.addTests(last)
    return suite


class PricingTests(unittest.TestCase):
    """GetProducts (moto has no Price List API): TERM_MATCH filters over real-shaped products, each
    PriceList entry a JSON document in a string; only in the API's own regions."""

    def pricing(self, region):
        return boto3.client("pricing", endpoint_url=PROXY_URL, region_name=region, aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))

    def test_get_products_answers_term_matches_in_awss_shape(self):
        pricing = self.pricing("us-east-1")
        out = pricing.get_products(ServiceCode="AmazonEC2", FormatVersion="aws_v1", Filters=[
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
            {"Type": "TERM_MATCH", "Field": "usagetype", "Value": "NatGateway-Hours"}])
        self.assertEqual(out["FormatVersion"], "aws_v1")
        self.assertEqual(len(out["PriceList"]), 1)
        entry = json.loads(out["PriceList"][0])
        self.assertEqual(entry["product"]["attributes"]["usagetype"], "NatGateway-Hours")
        term = next(iter(entry["terms"]["OnDemand"].values()))
        dimension = next(iter(term["priceDimensions"].values()))
        self.assertEqual(dimension["pricePerUnit"]["USD"], "0.0480000000", "not the table's 0.045")
        nothing = pricing.get_products(ServiceCode="AmazonEC2", Filters=[
            {"Type": "TERM_MATCH", "Field": "usagetype", "Value": "USW2-NatGateway-Hours"}])
        self.assertEqual(nothing["PriceList"], [])
        with self.assertRaises(ClientError) as refused:
            self.pricing("eu-west-3").get_products(ServiceCode="AmazonEC2")
        self.assertIn("no endpoint in eu-west-3", str(refused.exception))

    def test_get_products_pages_with_next_token_and_a_page_may_hold_none(self):
        pricing = self.pricing("us-east-1")
        usage = lambda entries: [json.loads(e)["product"]["attributes"]["usagetype"] for e in entries]
        # A key's one product on page 3: pages 1 and 2 hold none of it, each with a NextToken.
        pitr = [{"Type": "TERM_MATCH", "Field": "usagetype", "Value": "TimedPITRStorage-ByteHrs"}]
        first = pricing.get_products(ServiceCode="AmazonDynamoDB", Filters=pitr, MaxResults=10)
        self.assertEqual(first["PriceList"], [])
        self.assertIn("NextToken", first)
        pages = list(pricing.get_paginator("get_products").paginate(ServiceCode="AmazonDynamoDB", Filters=pitr))
        self.assertEqual([usage(p["PriceList"]) for p in pages], [[], [], ["TimedPITRStorage-ByteHrs"]])
        self.assertNotIn("NextToken", pages[-1])
        # Unfiltered: every product once, in pages of at most MaxResults.
        pages = list(pricing.get_paginator("get_products").paginate(
            ServiceCode="AmazonDynamoDB", PaginationConfig={"PageSize": 1}))
        self.assertTrue(all(len(p["PriceList"]) <= 1 for p in pages))
        self.assertEqual(len([e for p in pages for e in p["PriceList"]]), 5)
        self.assertEqual(len(set(e for p in pages for e in p["PriceList"])), 5)
        # A token that is not GetProducts', or was given for another request, is refused.
        code = lambda **kw: code_of(pricing.get_products, ServiceCode="AmazonDynamoDB", **kw)
        self.assertEqual(code(NextToken="not-a-token"), "InvalidNextTokenException")
        self.assertEqual(code(NextToken=first["NextToken"], Filters=[]), "InvalidNextTokenException")
        self.assertEqual(code(MaxResults=101), "InvalidParameterException")



import cbor_json  # noqa: E402


def cbor_call(url, op, payload, region="us-east-1"):
    """A CloudWatch call as aws-sdk-cloudwatch makes it (Smithy RPC v2 CBOR): (status, headers, decoded body)."""
    status, headers, body = raw(url, "POST", cbor_json.OPERATION_PATH + op, "monitoring", cbor_json.encode(payload),
                                headers={"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                                         "accept": "application/cbor", "x-amzn-query-mode": "true"}, region=region)
    return status, headers, cbor_json.decode(body)


def five_xx_alarm(alarm, threshold=5.0, tags=None):
    dims = [{"Name": "TargetGroup", "Value": "targetgroup/t-tg/abc"}, {"Name": "LoadBalancer", "Value": "app/t-alb/def"}]
    stat = lambda name: {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": name, "Dimensions": dims},  # noqa: E731
                         "Period": 60, "Stat": "Sum"}
    doc = {"AlarmName": alarm, "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Threshold": threshold,
           "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
           "Metrics": [{"Id": "errors", "MetricStat": stat("HTTPCode_Target_5XX_Count"), "ReturnData": False},
                       {"Id": "requests", "MetricStat": stat("RequestCount"), "ReturnData": False},
                       {"Id": "rate", "Expression": "100 * errors / requests", "ReturnData": True}]}
    if tags is not None:
        doc["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return doc


class CborTests(unittest.TestCase):
    """aws-sdk-cloudwatch speaks Smithy RPC v2 CBOR only, moto 5.2.5 JSON and query only: the realism layer
    (and moto_cbor.py in front of bare moto) translate, with the types the Rust decoder insists on."""

    def test_the_codec_round_trips_and_types_answers_by_the_model(self):
        value = {"a": [1, -2, 3.5, True, None, "é", b"\x00\x01"], "t": cbor_json.Tag(1, 1700000000.5), "big": 2 ** 40}
        self.assertEqual(cbor_json.decode(cbor_json.encode(value)), value)
        # Indefinite-length map and string (what some encoders write), and a half float.
        self.assertEqual(cbor_json.decode(bytes([0xbf, 0x61, 0x6b, 0x7f, 0x61, 0x61, 0x61, 0x62, 0xff, 0xff])), {"k": "ab"})
        self.assertEqual(cbor_json.decode(bytes([0xf9, 0x3c, 0x00])), 1.0)
        typed = cbor_json.typed({"MetricAlarms": [{"Threshold": 5, "EvaluationPeriods": 2.0,
                                                   "StateUpdatedTimestamp": 1700000000.25}]}, "DescribeAlarmsOutput")
        alarm = typed["MetricAlarms"][0]
        self.assertIsInstance(alarm["Threshold"], float)
        self.assertIsInstance(alarm["EvaluationPeriods"], int)
        self.assertEqual(alarm["StateUpdatedTimestamp"], cbor_json.Tag(1, 1700000000.25))
        self.assertIsNone(cbor_json.operation("/service/Other/operation/X"))
        self.assertEqual(cbor_json.operation(cbor_json.OPERATION_PATH + "PutMetricAlarm"), "PutMetricAlarm")

    def test_alarms_keep_awss_states_and_tags_through_the_proxy(self):
        alarm = name("cw")
        status, headers, _ = cbor_call(PROXY_URL, "PutMetricAlarm", five_xx_alarm(alarm, tags={"owner": "a"}))
        self.assertEqual((status, headers.get("smithy-protocol")), (200, "rpc-v2-cbor"))
        describe = lambda **kw: cbor_call(PROXY_URL, "DescribeAlarms", dict({"AlarmNames": [alarm]}, **kw))[2]  # noqa: E731
        found = describe()["MetricAlarms"][0]
        self.assertEqual(found["StateValue"], "INSUFFICIENT_DATA", "AWS: a new alarm has no data yet")
        self.assertIsInstance(found["Threshold"], float)
        self.assertIsInstance(found["StateUpdatedTimestamp"], cbor_json.Tag)
        self.assertEqual(len(found["Metrics"]), 3)
        status, _, _ = cbor_call(PROXY_URL, "SetAlarmState", {"AlarmName": alarm, "StateValue": "ALARM",
                                                            "StateReason": "test"})
        self.assertEqual(status, 200)
        # An update keeps the state and ignores the tags it sends.
        cbor_call(PROXY_URL, "PutMetricAlarm", five_xx_alarm(alarm, threshold=9.0, tags={"owner": "b"}))
        found = describe()["MetricAlarms"][0]
        self.assertEqual((found["StateValue"], found["StateReason"], found["Threshold"]), ("ALARM", "test", 9.0))
        self.assertEqual([a["AlarmName"] for a in describe(StateValue="ALARM")["MetricAlarms"]], [alarm])
        self.assertEqual(describe(StateValue="OK")["MetricAlarms"], [])
        arn = found["AlarmArn"]
        tags = cbor_call(PROXY_URL, "ListTagsForResource", {"ResourceARN": arn})[2]["Tags"]
        self.assertEqual(tags, [{"Key": "owner", "Value": "a"}])
        self.assertEqual(cbor_call(PROXY_URL, "DeleteAlarms", {"AlarmNames": [alarm]})[0], 200)
        status, headers, body = cbor_call(PROXY_URL, "ListTagsForResource", {"ResourceARN": arn})
        self.assertEqual((status, body["__type"]), (404, "ResourceNotFoundException"))
        self.assertTrue(headers["x-amzn-query-error"].startswith("ResourceNotFoundException;"))
        status, headers, body = cbor_call(PROXY_URL, "SetAlarmState", {"AlarmName": alarm, "StateValue": "OK",
                                                                     "StateReason": "x"})
        self.assertEqual(headers["x-amzn-query-error"].split(";")[0], "ResourceNotFound")
        calls = [c for c in read_log(CALL_LOG) if c["service"] == "monitoring"]
        self.assertIn("PutMetricAlarm", {c["action"] for c in calls}, "logged by action like any call")

    def test_bare_moto_answers_cbor_through_its_launcher(self):
        port = free_port()
        launcher = os.path.join(HERE, "moto_cbor.py")
        with open(os.devnull, "ab") as log:
            proc = subprocess.Popen([sys.executable, launcher, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
        _procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def answers():
            try:
                return urllib.request.urlopen(f"{url}/moto-api/", timeout=1).status == 200
            except OSError:
                return proc.poll() is not None
        wait_for(answers, timeout=30, interval=0.1)
        self.assertIsNone(proc.poll(), "the launcher runs")
        alarm = name("bare")
        self.assertEqual(cbor_call(url, "PutMetricAlarm", five_xx_alarm(alarm, tags={"k": "v"}))[0], 200)
        found = cbor_call(url, "DescribeAlarms", {"AlarmNames": [alarm]})[2]["MetricAlarms"][0]
        self.assertEqual((found["AlarmName"], found["Threshold"]), (alarm, 5.0))
        status, headers, body = cbor_call(url, "SetAlarmState", {"AlarmName": "nope", "StateValue": "OK", "StateReason": "x"})
        self.assertEqual((status, headers["x-amzn-query-error"].split(";")[0]), (404, "ResourceNotFound"))
        self.assertEqual(raw(url, "POST", "/", "ec2", b"Action=DescribeVpcs&Version=2016-11-15",
                             {"content-type": "application/x-www-form-urlencoded"})[0], 200, "everything else as before")


class Strategy:
    """Net + Ecs with what ECS's own blue/green, canary and linear deployments need: an alternate ip target
    group, a production listener rule forwarding to both (100/0), an infrastructure role ECS can assume."""

    def __init__(self, c, interval=10, threshold=2, dereg=30):
        elb, iam = c["elbv2"], c["iam"]
        self.net = Net(c, interval=interval, threshold=threshold, dereg=dereg)
        self.app = Ecs(c, wait_iam=False)
        self.alt = elb.create_target_group(Name=name("alt"), Protocol="HTTP", Port=80, VpcId=self.net.vpc, TargetType="ip",
                                           HealthCheckIntervalSeconds=interval,
                                           HealthyThresholdCount=threshold)["TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(TargetGroupArn=self.alt, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(dereg)}])
        self.rule = elb.create_rule(ListenerArn=self.net.listener, Priority=1,
                                    Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                                    Actions=[self.forward(self.net.tg, 100, self.alt, 0)])["Rules"][0]["RuleArn"]
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        self.role = iam.create_role(RoleName=name("infra"), AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        self.alarm = name("5xx")
        cbor_call(PROXY_URL, "PutMetricAlarm", five_xx_alarm(self.alarm))
        time.sleep(max(0.0, time.time() - time.time() + CONFIG["iam_propagation_s"] * SCALE + TOL))

    @staticmethod
    def forward(a, wa, b, wb):
        return {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": a, "Weight": wa},
                                                                      {"TargetGroupArn": b, "Weight": wb}]}}

    def args(self, svc, strategy="CANARY", desired=2, **dc):
        args = self.app.service_args(self.net, svc, desired=desired)
        args["loadBalancers"][0]["advancedConfiguration"] = {
            "alternateTargetGroupArn": self.alt, "productionListenerRule": self.rule, "roleArn": self.role}
        args["deploymentConfiguration"] = dict({
            "strategy": strategy, "bakeTimeInMinutes": 1, "minimumHealthyPercent": 100, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "alarms": {"alarmNames": [self.alarm], "enable": True, "rollback": True}}, **dc)
        return args

    def weights(self, c):
        """{target group: weight} of the production rule, as DescribeRules shows it."""
        rule = c["elbv2"].describe_rules(RuleArns=[self.rule])["Rules"][0]
        return {t["TargetGroupArn"]: t["Weight"] for t in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}

    def revision(self, c, image):
        td = c["ecs"].describe_task_definition(taskDefinition=self.app.td)["taskDefinition"]
        return c["ecs"].register_task_definition(
            family=td["family"], requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            executionRoleArn=td["executionRoleArn"],
            containerDefinitions=[dict(td["containerDefinitions"][0], image=image)])["taskDefinition"]["taskDefinitionArn"]


def routing_gaps(listener):
    """The routing gaps the layer saw on this listener."""
    body = urllib.request.urlopen(f"{PROXY_URL}/realism/routing-gaps", timeout=10).read()
    return [g for g in json.loads(body)["gaps"] if g["listener"] == listener]


def deployments(c, cluster, svc):
    """The service's deployments, newest first, described."""
    briefs = c["ecs"].list_service_deployments(cluster=cluster, service=svc)["serviceDeployments"]
    if not briefs:
        return []
    return c["ecs"].describe_service_deployments(
        serviceDeploymentArns=[b["serviceDeploymentArn"] for b in briefs])["serviceDeployments"]


def watch(c, world, svc, until, timeout=20):
    """Poll the newest deployment and the production rule until `until(deployment)`: [(stage, status, weights)]
    in the order they changed, and the last deployment seen."""
    seen, deadline = [], time.time() + timeout
    while True:
        dep = deployments(c, world.app.cluster, svc)[0]
        w = world.weights(c)
        row = (dep.get("lifecycleStage"), dep["status"], (w[world.net.tg], w[world.alt]))
        if not seen or seen[-1] != row:
            seen.append(row)
        if until(dep):
            return seen, dep
        if time.time() > deadline:
            raise AssertionError(f"timed out: {seen}")
        time.sleep(0.02)


class EcsStrategyTests(unittest.TestCase):
    """ECS's BLUE_GREEN / CANARY / LINEAR deployments and deployment alarms, as ECS runs them (issue 20)."""

    def test_strategy_checks_and_settings_kept(self):
        ecs, elb, iam = C["ecs"], C["elbv2"], C["iam"]
        w = Strategy(C)
        svc = name("svc")
        code = lambda **kw: code_of(ecs.create_service, **kw)  # noqa: E731
        bare = w.args(svc)
        del bare["loadBalancers"][0]["advancedConfiguration"]
        self.assertEqual(code(**bare), "InvalidParameterException")
        self.assertEqual(code(**w.args(svc, canaryConfiguration={"canaryPercent": 0.05})), "InvalidParameterException")
        self.assertEqual(code(**w.args(svc, canaryConfiguration={"canaryPercent": 5.05})), "InvalidParameterException")
        self.assertEqual(code(**w.args(svc, bakeTimeInMinutes=1441)), "InvalidParameterException")
        self.assertEqual(code(**w.args(svc, "LINEAR", linearConfiguration={"stepPercent": 2.0})), "InvalidParameterException")
        self.assertEqual(code(**w.args(svc, "ROLLING", canaryConfiguration={"canaryPercent": 5.0})), "InvalidParameterException")
        self.assertEqual(code(**w.args(svc, "SIDEWAYS")), "InvalidParameterException")
        other = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=w.net.vpc,
                                        TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        elsewhere = w.args(svc)
        elsewhere["loadBalancers"][0]["advancedConfiguration"]["alternateTargetGroupArn"] = other
        with self.assertRaises(ClientError) as refused:  # the rule does not forward to it
            ecs.create_service(**elsewhere)
        self.assertIn("must have a single forward action", str(refused.exception))
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        wrong = iam.create_role(RoleName=name("tasks"), AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        time.sleep(CONFIG["iam_propagation_s"] * SCALE + TOL)
        untrusted = w.args(svc)
        untrusted["loadBalancers"][0]["advancedConfiguration"]["roleArn"] = wrong
        with self.assertRaises(ClientError) as refused:
            ecs.create_service(**untrusted)
        self.assertIn("ecs.amazonaws.com", str(refused.exception))
        args = w.args(svc, canaryConfiguration={"canaryPercent": 12.5, "canaryBakeTimeInMinutes": 2})
        ecs.create_service(**args)
        s = describe_service(C, w.app.cluster, svc)
        self.assertEqual(s["deploymentConfiguration"]["strategy"], "CANARY")
        self.assertEqual(s["deploymentConfiguration"]["canaryConfiguration"], {"canaryPercent": 12.5, "canaryBakeTimeInMinutes": 2})
        self.assertEqual((s["deploymentConfiguration"]["bakeTimeInMinutes"], s["deploymentConfiguration"]["alarms"]["alarmNames"]),
                         (1, [w.alarm]))
        self.assertEqual(s["loadBalancers"][0]["advancedConfiguration"]["alternateTargetGroupArn"], w.alt)
        # Back to ROLLING: the canary settings go with the strategy.
        ecs.update_service(cluster=w.app.cluster, service=svc, deploymentConfiguration={"strategy": "ROLLING"})
        dc = describe_service(C, w.app.cluster, svc)["deploymentConfiguration"]
        self.assertEqual((dc["strategy"], "canaryConfiguration" in dc, dc["bakeTimeInMinutes"]), ("ROLLING", False, 1))
        # A new infrastructure role is not assumable at once (IAM propagation), as for task roles (17).
        fresh = iam.create_role(RoleName=name("infra"), AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        lbs = [dict(args["loadBalancers"][0], advancedConfiguration=dict(args["loadBalancers"][0]["advancedConfiguration"], roleArn=fresh))]
        self.assertEqual(code_of(ecs.update_service, cluster=w.app.cluster, service=svc, loadBalancers=lbs,
                                 deploymentConfiguration={"strategy": "BLUE_GREEN"}), "InvalidParameterException")

    def test_canary_shifts_bakes_cleans_up_and_the_other_target_group_serves(self):
        ecs = C["ecs"]
        w = Strategy(C)
        svc = name("svc")
        ecs.create_service(**w.args(svc, canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1}))
        first = wait_for(lambda: (lambda d: d if d and d[0]["status"] == "SUCCESSFUL" else None)(
            deployments(C, w.app.cluster, svc)), timeout=20)
        self.assertEqual(len(first), 1, "the service's first deployment is listed")
        self.assertEqual(target_states(C, w.net.tg), ["healthy", "healthy"])
        self.assertEqual(target_states(C, w.alt), [])
        new_td = w.revision(C, "nginx:1.27")
        t0 = time.time()
        ecs.update_service(cluster=w.app.cluster, service=svc, taskDefinition=new_td)
        s = describe_service(C, w.app.cluster, svc)
        self.assertEqual([d["status"] for d in s["deployments"]], ["PRIMARY", "ACTIVE"])
        self.assertEqual([(d["desiredCount"], d["runningCount"] + d["pendingCount"]) for d in s["deployments"]],
                         [(2, 2), (2, 2)], "the old tasks keep running beside a full new set")
        self.assertEqual((s["runningCount"], s["pendingCount"]), (2, 2))
        seen, dep = watch(C, w, svc, lambda d: d["lifecycleStage"] == "BAKE_TIME")
        self.assertEqual(target_states(C, w.alt), ["healthy", "healthy"], "a second full task set")
        self.assertEqual(target_states(C, w.net.tg), ["healthy", "healthy"], "the old one still runs in the bake")
        seen2, dep = watch(C, w, svc, lambda d: d["status"] == "SUCCESSFUL")
        seen += seen2
        order = ["PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
                 "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"]
        stages = [order.index(r[0]) for r in seen]  # the short stages (deploy_stage_s) may fall between two polls
        self.assertEqual(stages, sorted(stages), seen)
        self.assertTrue({"SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"} <= {r[0] for r in seen}, seen)
        weights = [r[2] for r in seen]
        self.assertEqual([x for i, x in enumerate(weights) if x not in weights[:i]], [(100, 0), (90, 10), (0, 100)])
        self.assertIn(("PRODUCTION_TRAFFIC_SHIFT", "IN_PROGRESS", (90, 10)), seen)
        # bake 1 min after the shift (canary bake 1 min before it), old tasks drain 30 s
        self.assertGreaterEqual(time.time() - t0, (60 + 60 + 30) * SCALE - TOL)
        self.assertEqual(dep["targetServiceRevision"]["runningTaskCount"], 2)
        self.assertEqual((dep["alarms"]["status"], dep["alarms"]["triggeredAlarmNames"]), ("MONITORING_COMPLETE", []))
        self.assertEqual(dep["sourceServiceRevisions"][0]["arn"], first[0]["targetServiceRevision"]["arn"])
        self.assertEqual(target_states(C, w.net.tg), [])
        s = describe_service(C, w.app.cluster, svc)
        self.assertEqual((s["taskDefinition"], s["deployments"][0]["rolloutState"], len(s["deployments"])),
                         (new_td, "COMPLETED", 1))
        revs = ecs.describe_service_revisions(serviceRevisionArns=[dep["targetServiceRevision"]["arn"]])["serviceRevisions"]
        self.assertEqual((revs[0]["taskDefinition"], revs[0]["containerImages"][0]["image"]), (new_td, "nginx:1.27"))
        # The next deployment goes the other way: from the alternate target group back to the primary one.
        ecs.update_service(cluster=w.app.cluster, service=svc, taskDefinition=w.app.td,
                           deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0})
        seen, dep = watch(C, w, svc, lambda d: d["status"] == "SUCCESSFUL")
        weights = [r[2] for r in seen]
        self.assertEqual([x for i, x in enumerate(weights) if x not in weights[:i]], [(0, 100), (100, 0)])
        self.assertEqual(target_states(C, w.alt), [])
        self.assertEqual(target_states(C, w.net.tg), ["healthy", "healthy"])
        listed = ecs.list_service_deployments(cluster=w.app.cluster, service=svc)["serviceDeployments"]
        self.assertEqual([d["status"] for d in listed], ["SUCCESSFUL"] * 3, "newest first")
        self.assertEqual(listed[0]["serviceDeploymentArn"], dep["serviceDeploymentArn"])

    def test_routing_gap_when_the_rule_sends_traffic_to_an_empty_target_group(self):
        """The routing gap observation: none while the rule forwards to the group the tasks serve in; one when it
        sends the traffic to the empty alternate group (until it is sent back)."""
        ecs, elb = C["ecs"], C["elbv2"]
        w = Strategy(C)
        svc = name("svc")
        ecs.create_service(**w.args(svc, canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 0}))
        wait_for(lambda: target_states(C, w.net.tg) == ["healthy", "healthy"], timeout=20)
        self.assertEqual(routing_gaps(w.net.listener), [])
        elb.modify_rule(RuleArn=w.rule, Actions=[w.forward(w.net.tg, 0, w.alt, 100)])
        gaps = routing_gaps(w.net.listener)
        self.assertEqual([g["target_group"] for g in gaps], [w.alt], "no target at all in the alternate group")
        elb.modify_rule(RuleArn=w.rule, Actions=[w.forward(w.net.tg, 100, w.alt, 0)])
        describe_service(C, w.app.cluster, svc)
        self.assertEqual(len(routing_gaps(w.net.listener)), 1, "closed: not counted again")
        ecs.update_service(cluster=w.app.cluster, service=svc, desiredCount=0)
        elb.modify_rule(RuleArn=w.rule, Actions=[w.forward(w.net.tg, 0, w.alt, 100)])
        self.assertEqual(len(routing_gaps(w.net.listener)), 1, "a service scaled to 0 is not supposed to serve")

    def test_linear_steps(self):
        ecs = C["ecs"]
        w = Strategy(C)
        svc = name("svc")
        ecs.create_service(**w.args(svc, "LINEAR", desired=1, bakeTimeInMinutes=0,
                                    linearConfiguration={"stepPercent": 40.0, "stepBakeTimeInMinutes": 1}))
        wait_for(lambda: deployments(C, w.app.cluster, svc)[0]["status"] == "SUCCESSFUL", timeout=20)
        ecs.update_service(cluster=w.app.cluster, service=svc, forceNewDeployment=True)
        seen, _ = watch(C, w, svc, lambda d: d["status"] == "SUCCESSFUL")
        weights = [r[2] for r in seen]
        self.assertEqual([x for i, x in enumerate(weights) if x not in weights[:i]],
                         [(100, 0), (60, 40), (20, 80), (0, 100)])
        # A newer deployment in the middle of the shift stops this one: traffic back, then the newer one runs.
        ecs.update_service(cluster=w.app.cluster, service=svc, forceNewDeployment=True)
        watch(C, w, svc, lambda d: d["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT")
        ecs.update_service(cluster=w.app.cluster, service=svc, forceNewDeployment=True)
        older = deployments(C, w.app.cluster, svc)[1]
        self.assertEqual((older["status"], older["lifecycleStage"]), ("STOPPED", "PRODUCTION_TRAFFIC_SHIFT"))
        self.assertEqual(w.weights(C), {w.net.tg: 0, w.alt: 100}, "back on the revision that served")
        seen, _ = watch(C, w, svc, lambda d: d["status"] == "SUCCESSFUL")
        self.assertEqual(seen[-1][2], (100, 0))
        self.assertEqual(target_states(C, w.net.tg), ["healthy"])

    def test_alarm_during_the_bake_rolls_a_canary_back(self):
        ecs = C["ecs"]
        w = Strategy(C)
        svc = name("svc")
        ecs.create_service(**w.args(svc, canaryConfiguration={"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 0},
                                    bakeTimeInMinutes=2))
        wait_for(lambda: deployments(C, w.app.cluster, svc)[0]["status"] == "SUCCESSFUL", timeout=20)
        bad = w.revision(C, "nginx:answers-500")
        ecs.update_service(cluster=w.app.cluster, service=svc, taskDefinition=bad)
        watch(C, w, svc, lambda d: d["lifecycleStage"] == "BAKE_TIME")
        self.assertEqual(w.weights(C), {w.net.tg: 0, w.alt: 100})
        data = json.dumps({"version": "1.0", "queryDate": "2026-12-03T20:01:00.000+0000", "threshold": 5.0,
                           "recentDatapoints": [7.5, 9.0], "evaluatedDatapoints": [
                               {"timestamp": "2026-12-03T20:01:00.000+0000", "sampleCount": 1.0, "value": 9.0}]})
        reason = ("Threshold Crossed: 2 out of the last 2 datapoints [9.0 (03/12/26 20:01:00), 7.5 (03/12/26 20:00:00)] "
                  "were greater than the threshold (5.0) (minimum 2 datapoints for OK -> ALARM transition).")
        status, _, _ = cbor_call(PROXY_URL, "SetAlarmState", {"AlarmName": w.alarm, "StateValue": "ALARM",
                                                            "StateReason": reason, "StateReasonData": data})
        self.assertEqual(status, 200)
        alarm = cbor_call(PROXY_URL, "DescribeAlarms", {"AlarmNames": [w.alarm]})[2]["MetricAlarms"][0]
        self.assertEqual((alarm["StateValue"], alarm["StateReason"], json.loads(alarm["StateReasonData"])["threshold"]),
                         ("ALARM", reason, 5.0))
        s = describe_service(C, w.app.cluster, svc)  # at once: the old revision PRIMARY, the bad one FAILED
        self.assertEqual([(d["status"], d["taskDefinition"], d["rolloutState"]) for d in s["deployments"]],
                         [("PRIMARY", w.app.td, "COMPLETED"), ("ACTIVE", bad, "FAILED")])
        self.assertIn(w.alarm, s["deployments"][1]["rolloutStateReason"])
        seen, dep = watch(C, w, svc, lambda d: d["status"] == "ROLLBACK_SUCCESSFUL")
        self.assertIn("ROLLBACK_IN_PROGRESS", [r[1] for r in seen])
        self.assertEqual(w.weights(C), {w.net.tg: 100, w.alt: 0}, "traffic back on the old target group")
        self.assertEqual((dep["alarms"]["status"], dep["alarms"]["triggeredAlarmNames"]), ("TRIGGERED", [w.alarm]))
        self.assertEqual(dep["lifecycleStage"], "BAKE_TIME", "the stage it was rolled back in")
        self.assertIn(w.alarm, dep["rollback"]["reason"])
        self.assertEqual(dep["rollback"]["serviceRevisionArn"], dep["sourceServiceRevisions"][0]["arn"])
        self.assertEqual(target_states(C, w.alt), [])
        self.assertEqual(target_states(C, w.net.tg), ["healthy", "healthy"], "the old tasks never stopped")
        s = describe_service(C, w.app.cluster, svc)
        self.assertEqual((s["taskDefinition"], s["deployments"][0]["taskDefinition"], s["deployments"][0]["rolloutState"]),
                         (w.app.td, w.app.td, "COMPLETED"))
        events = [e["message"] for e in s["events"]]
        self.assertTrue(any(e.endswith("deployment failed: alarm detected.") for e in events), events)
        self.assertTrue(any(f"(service {svc}) rolling back to deployment ecs-svc/" in e for e in events), events)

    def test_alarm_rolls_a_rolling_deployment_back(self):
        ecs = C["ecs"]
        w = Strategy(C)
        svc = name("svc")
        args = w.args(svc, "ROLLING")
        del args["loadBalancers"][0]["advancedConfiguration"]
        ecs.create_service(**args)
        wait_for(lambda: describe_service(C, w.app.cluster, svc)["deployments"][0]["rolloutState"] == "COMPLETED", timeout=20)
        first = deployments(C, w.app.cluster, svc)[0]
        self.assertEqual((first["status"], "lifecycleStage" in first), ("SUCCESSFUL", False))
        bad = w.revision(C, "nginx:answers-500")
        ecs.update_service(cluster=w.app.cluster, service=svc, taskDefinition=bad)
        failed_id = describe_service(C, w.app.cluster, svc)["deployments"][0]["id"]
        self.assertEqual(deployments(C, w.app.cluster, svc)[0]["status"], "IN_PROGRESS")
        cbor_call(PROXY_URL, "SetAlarmState", {"AlarmName": w.alarm, "StateValue": "ALARM", "StateReason": "test"})
        s = describe_service(C, w.app.cluster, svc)
        self.assertEqual(s["taskDefinition"], w.app.td, "rolled back at once")
        self.assertEqual((s["deployments"][0]["id"] != failed_id, s["deployments"][0]["rolloutState"]), (True, "IN_PROGRESS"))
        self.assertIn(w.alarm, s["deployments"][0]["rolloutStateReason"])
        dep = deployments(C, w.app.cluster, svc)[0]
        self.assertEqual((dep["status"], dep["alarms"]["triggeredAlarmNames"]), ("ROLLBACK_IN_PROGRESS", [w.alarm]))
        wait_for(lambda: deployments(C, w.app.cluster, svc)[0]["status"] == "ROLLBACK_SUCCESSFUL", timeout=20)
        self.assertEqual(describe_service(C, w.app.cluster, svc)["deployments"][0]["rolloutState"], "COMPLETED")
        # The alarm goes back to OK: the next deployment completes; StopServiceDeployment rolls one back on request.
        cbor_call(PROXY_URL, "SetAlarmState", {"AlarmName": w.alarm, "StateValue": "OK", "StateReason": "test"})
        ecs.update_service(cluster=w.app.cluster, service=svc, taskDefinition=bad)
        arn = deployments(C, w.app.cluster, svc)[0]["serviceDeploymentArn"]
        ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
        dep = C["ecs"].describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
        self.assertEqual((dep["status"], dep["alarms"]["status"]), ("ROLLBACK_IN_PROGRESS", "MONITORING_COMPLETE"))
        self.assertIn("StopServiceDeployment", dep["rollback"]["reason"])
        gone = arn.rsplit("/", 1)[0] + "/nosuchdeployment"
        out = ecs.describe_service_deployments(serviceDeploymentArns=[gone])
        self.assertEqual((out["serviceDeployments"], out["failures"]), ([], [{"arn": gone, "reason": "MISSING"}]))
        self.assertEqual(code_of(ecs.list_service_deployments, cluster=w.app.cluster, service="nope"), "ServiceNotFoundException")

    def test_circuit_breaker_stops_a_blue_green_before_any_traffic_moves(self):
        ecs = C["ecs"]
        w = Strategy(C)
        svc = name("svc")
        ecs.create_service(**w.args(svc, "BLUE_GREEN", desired=1))
        wait_for(lambda: deployments(C, w.app.cluster, svc)[0]["status"] == "SUCCESSFUL", timeout=20)
        ecs.update_service(cluster=w.app.cluster, service=svc, taskDefinition=w.revision(C, "nginx:fails-health-checks"))
        seen, dep = watch(C, w, svc, lambda d: d["status"] == "ROLLBACK_SUCCESSFUL")
        self.assertEqual({r[2] for r in seen}, {(100, 0)}, "production traffic never left the old revision")
        self.assertEqual(dep["lifecycleStage"], "SCALE_UP")
        self.assertEqual((dep["deploymentCircuitBreaker"]["status"], dep["alarms"]["status"]), ("TRIGGERED", "MONITORING_COMPLETE"))
        self.assertIn("circuit breaker", dep["rollback"]["reason"])
        self.assertEqual(describe_service(C, w.app.cluster, svc)["taskDefinition"], w.app.td)
        # A deployment under way ends with its service.
        ecs.update_service(cluster=w.app.cluster, service=svc, forceNewDeployment=True)
        ecs.update_service(cluster=w.app.cluster, service=svc, desiredCount=0)
        ecs.delete_service(cluster=w.app.cluster, service=svc)
        self.assertEqual(deployments(C, w.app.cluster, svc)[0]["status"], "STOPPED")


if __name__ == "__main__":
    unittest.main(verbosity=2)
