"""The database: a private VPC, RDS PostgreSQL behind an RDS Proxy, rotated credentials.

Stateful, so in its own stack (deployed once, rarely changed). The VPC has only private
isolated subnets (no NAT, no internet gateway): the Aggregate and web functions reach
S3 through a gateway endpoint, and Secrets Manager and Step Functions through the only
two interface endpoints they need. Clients talk to the proxy with TLS; the proxy talks
to the instance. With ``database.existing`` set no stack is made: :func:`existing_access`
imports the given secret, VPC, subnets and security group into the consuming stack.

:class:`DatabaseAccess` is the seam: what a function needs to reach the database, and
:meth:`DatabaseAccess.connect` sets the ``PLATESEG_DATABASE_*`` environment variables and
grants exactly that function the secret (or ``rds-db:connect`` with IAM auth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import ExistingDatabase, PlatesegConfig

__all__ = [
    "DATABASE_NAME",
    "DatabaseAccess",
    "DatabaseStack",
    "existing_access",
    "resolve_access",
]

#: Name of the plateseg database inside the PostgreSQL instance.
DATABASE_NAME = "plateseg"
_USERNAME = "plateseg"
_PORT = 5432


@dataclass(frozen=True)
class DatabaseAccess:
    """What a function needs to reach the database.

    Attributes
    ----------
    vpc : aws_ec2.IVpc
        The VPC the function must join.
    subnets : aws_ec2.SubnetSelection
        Its private subnets.
    security_group : aws_ec2.ISecurityGroup
        The client group the proxy (or database) admits on port 5432.
    secret : aws_secretsmanager.ISecret
        Credentials (``username``, ``password``, ``host``, ``port``, ``dbname``).
    proxy_endpoint : str
        RDS Proxy endpoint (a token for a created proxy; may be empty for an existing DB).
    iam_auth : bool
        Connect with IAM tokens through the proxy (the secret still names user and host).
    proxy : aws_rds.IDatabaseProxy or None
        The proxy, for ``rds-db:connect`` grants when ``iam_auth``.
    """

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup
    secret: secretsmanager.ISecret
    proxy_endpoint: str
    iam_auth: bool
    proxy: rds.IDatabaseProxy | None

    def environment(self) -> dict[str, str]:
        """The ``PLATESEG_DATABASE_*`` variables :class:`plateseg.settings.Settings` reads."""
        return {
            "PLATESEG_DATABASE_SECRET_ARN": self.secret.secret_arn,
            "PLATESEG_DATABASE_PROXY_ENDPOINT": self.proxy_endpoint,
            "PLATESEG_DATABASE_NAME": DATABASE_NAME,
            "PLATESEG_DATABASE_IAM_AUTH": "true" if self.iam_auth else "false",
        }

    def connect(self, function: lambda_.Function) -> None:
        """Give one function the database: environment, the secret and, with IAM auth,
        ``rds-db:connect`` on the proxy.

        The secret is read in both modes: it names the user, host, port and database
        (:func:`plateseg.db.aws.read_credentials`); with IAM auth the password is
        replaced by a token.
        """
        for key, value in self.environment().items():
            function.add_environment(key, value)
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadDatabaseSecret",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self.secret.secret_arn],
            )
        )
        if self.iam_auth and self.proxy is not None:
            self.proxy.grant_connect(function, _USERNAME)


def existing_access(scope: Construct, existing: ExistingDatabase) -> DatabaseAccess:
    """Import an existing database's secret and network into ``scope`` (no lookups)."""
    vpc = ec2.Vpc.from_vpc_attributes(
        scope,
        "ExistingVpc",
        vpc_id=existing.vpc_id,
        availability_zones=list(existing.availability_zones),
        isolated_subnet_ids=list(existing.subnet_ids),
    )
    proxy = None
    if existing.iam_auth:
        proxy = rds.DatabaseProxy.from_database_proxy_attributes(
            scope,
            "ExistingProxy",
            db_proxy_arn=Stack.of(scope).format_arn(
                service="rds",
                resource="db-proxy",
                resource_name=existing.proxy_resource_id,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            ),
            db_proxy_name=existing.proxy_resource_id,
            endpoint=existing.proxy_endpoint,
            security_groups=[],
        )
    return DatabaseAccess(
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnets=vpc.isolated_subnets),
        security_group=ec2.SecurityGroup.from_security_group_id(
            scope, "ExistingDatabaseClients", existing.security_group_id, mutable=False
        ),
        secret=secretsmanager.Secret.from_secret_complete_arn(
            scope, "ExistingDatabaseSecret", existing.secret_arn
        ),
        proxy_endpoint=existing.proxy_endpoint,
        iam_auth=existing.iam_auth,
        proxy=proxy,
    )


def resolve_access(scope: Construct, database: DatabaseAccess | ExistingDatabase) -> DatabaseAccess:
    """``database`` itself, or the existing database imported into ``scope``."""
    if isinstance(database, ExistingDatabase):
        return existing_access(scope, database)
    return database


def _removal(config: PlatesegConfig) -> RemovalPolicy:
    return getattr(RemovalPolicy, config.removal)


class DatabaseStack(Stack):
    """VPC, RDS PostgreSQL, rotated credentials and the RDS Proxy of one stage.

    Parameters
    ----------
    scope, construct_id
        As for any construct.
    config : PlatesegConfig
        ``database`` (class, storage, backups, Multi-AZ, deletion protection, rotation),
        ``stage`` and ``removal_policy``.
    **kwargs
        Passed to :class:`aws_cdk.Stack`.

    Attributes
    ----------
    access : DatabaseAccess
        Handed to the pipeline and web stacks.
    instance : aws_rds.DatabaseInstance
    proxy : aws_rds.DatabaseProxy
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatesegConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = config.database
        removal = _removal(config)
        plain_removal = (
            RemovalPolicy.DESTROY if config.removal == "DESTROY" else RemovalPolicy.RETAIN
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=plain_removal
        )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                )
            },
        )
        clients = ec2.SecurityGroup(
            self, "Clients", vpc=vpc, description="plateseg functions that use the database"
        )
        endpoints_sg = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=vpc,
            allow_all_outbound=False,
            description="Interface endpoints: HTTPS from the VPC only",
        )
        endpoints_sg.add_ingress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "HTTPS from inside the VPC"
        )
        # Only what in-VPC code calls besides S3: the secret (Aggregate, web, rotation)
        # and Step Functions (the web UI starts and describes executions).
        secrets_endpoint = vpc.add_interface_endpoint(
            "SecretsManager",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=isolated,
            security_groups=[endpoints_sg],
        )
        vpc.add_interface_endpoint(
            "StepFunctions",
            service=ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
            subnets=isolated,
            security_groups=[endpoints_sg],
        )

        proxy_sg = ec2.SecurityGroup(
            self, "ProxySecurityGroup", vpc=vpc, description="RDS Proxy of plateseg"
        )
        database_sg = ec2.SecurityGroup(
            self, "DatabaseSecurityGroup", vpc=vpc, description="RDS instance of plateseg"
        )
        proxy_sg.add_ingress_rule(clients, ec2.Port.tcp(_PORT), "plateseg functions")
        database_sg.add_ingress_rule(proxy_sg, ec2.Port.tcp(_PORT), "RDS Proxy")

        self.instance = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_9),
            instance_type=ec2.InstanceType(settings.instance_class),
            vpc=vpc,
            vpc_subnets=isolated,
            security_groups=[database_sg],
            credentials=rds.Credentials.from_generated_secret(
                _USERNAME, secret_name=f"plateseg-{config.stage}-database"
            ),
            database_name=DATABASE_NAME,
            port=_PORT,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=settings.allocated_storage_gb,
            max_allocated_storage=settings.allocated_storage_gb * 4,
            multi_az=config.multi_az,
            deletion_protection=config.deletion_protection,
            backup_retention=Duration.days(settings.backup_retention_days),
            delete_automated_backups=config.removal == "DESTROY",
            iam_authentication=True,
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            cloudwatch_logs_retention=logs.RetentionDays.ONE_MONTH,
            enable_performance_insights=settings.instance_class.split(".")[1] != "micro",
            removal_policy=removal,
        )
        assert self.instance.secret is not None  # from_generated_secret always makes one
        secret = self.instance.secret
        rotation_sg = ec2.SecurityGroup(
            self, "RotationSecurityGroup", vpc=vpc, description="Secret rotation function"
        )
        database_sg.add_ingress_rule(rotation_sg, ec2.Port.tcp(_PORT), "secret rotation")
        self.instance.add_rotation_single_user(
            automatically_after=Duration.days(settings.rotation_days),
            endpoint=secrets_endpoint,
            security_group=rotation_sg,
            vpc_subnets=isolated,
        )
        self.proxy = self.instance.add_proxy(
            "Proxy",
            vpc=vpc,
            vpc_subnets=isolated,
            secrets=[secret],
            security_groups=[proxy_sg],
            require_tls=True,
            iam_auth=settings.iam_auth,
            debug_logging=False,
        )
        self.access = DatabaseAccess(
            vpc=vpc,
            subnets=isolated,
            security_group=clients,
            secret=secret,
            proxy_endpoint=self.proxy.endpoint,
            iam_auth=settings.iam_auth,
            proxy=self.proxy,
        )
        CfnOutput(self, "ProxyEndpoint", value=self.proxy.endpoint)
        CfnOutput(self, "DatabaseSecretArn", value=secret.secret_arn)
        CfnOutput(self, "DatabaseInstanceId", value=self.instance.instance_identifier)
