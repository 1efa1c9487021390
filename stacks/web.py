"""The scientists' web UI: one Lambda container behind an HTTPS API with Cognito sign-in.

Why API Gateway HTTP API + Lambda rather than ALB + Fargate: the UI is used by a few
scientists a few times a day, so pay-per-request costs cents where an ALB and an always-on
task cost ~$35/month; the function reuses the pipeline's image (``lambdas.web.handler``,
an ASGI adapter over the FastAPI app); HTTP APIs terminate TLS on an AWS-managed
certificate and validate Cognito JWTs natively (no authorizer Lambda). The 29 s
integration timeout is no limit here: long work runs in Step Functions, not in requests.

Routes: every route (``ANY /`` and ``ANY /{proxy+}``, the page shell and static assets
included) has the Cognito JWT authorizer; there is no public route. The app runs with
``PLATESEG_WEB_AUTH=proxy`` and ``PLATESEG_WEB_PROXY=apigateway``: it accepts a request
only when the Lambda event carries the authorizer's verified claims
(``requestContext.authorizer.jwt.claims``), which API Gateway writes and no client can,
and it never trusts identity headers. Callers send ``Authorization: Bearer <Cognito
access token>`` (a script, or a browser extension / local proxy that attaches it); a UI
reached by plain browser navigation needs an ALB with OIDC sign-in instead, which the app
supports as ``PLATESEG_WEB_PROXY=alb`` (it verifies the ALB-signed ``x-amzn-oidc-data``
token; see :mod:`plateseg.web.proxy_auth`). The function joins the database's VPC (reads
results from RDS) and reaches S3 and Step Functions through the VPC endpoints of the database stack.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import ExistingDatabase, PlatesegConfig
from stacks.database import DatabaseAccess, resolve_access
from stacks.pipeline_stack import DOCKERFILE, IMAGE_ASSET_EXCLUDE, REPO_ROOT
from stacks.storage import resolve_bucket

__all__ = ["AUTHORIZED_ROUTES", "WEB_HANDLER", "WebStack"]

#: Image command of the web function (the same image as the pipeline's functions).
WEB_HANDLER = "lambdas.web.handler"

#: Every route of the API; each has the JWT authorizer (the app refuses requests without
#: the authorizer's claims, so a route added without it would serve nothing but 401).
AUTHORIZED_ROUTES = ("/", "/{proxy+}")

#: One JSON line per request in the API's access log.
_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "user": "$context.authorizer.claims.sub",
    "time": "$context.requestTime",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "latencyMs": "$context.responseLatency",
    "error": "$context.error.message",
}


class WebStack(Stack):
    """Cognito user pool, the web function and its HTTP API.

    Parameters
    ----------
    scope, construct_id
        As for any construct.
    config : PlatesegConfig
        ``stage``, ``removal_policy`` and ``web_callback_urls``.
    bucket : aws_s3.IBucket
        The store: read ``experiments/*``, ``runs/*``, ``models/*``; write ``models/*``
        (uploaded segmentation models) and ``experiments/*/layout.csv`` (plate layouts).
    database : DatabaseAccess
        The database the UI reads runs and results from.
    state_machine_name : str
        Fixed name of the pipeline's state machine (ARNs are built from it).
    map_label : str
        ``Label`` of the Distributed Map state (Map Run ARNs are built from it).
    **kwargs
        Passed to :class:`aws_cdk.Stack`.

    Attributes
    ----------
    function : aws_lambda.DockerImageFunction
    api : aws_apigatewayv2.HttpApi
    user_pool : aws_cognito.UserPool
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatesegConfig,
        bucket: s3.IBucket | str,
        database: DatabaseAccess | ExistingDatabase,
        state_machine_name: str,
        map_label: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        bucket = resolve_bucket(self, bucket)
        database = resolve_access(self, database)
        destroy = config.removal == "DESTROY"
        removal = RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN

        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
            ),
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal,
        )
        domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"plateseg-{config.stage}-{self.account}"
            ),
        )

        self.function = self._function(bucket, database, removal, state_machine_name, config)
        self._grant(bucket, state_machine_name, map_label)
        database.connect(self.function)

        integration = integrations.HttpLambdaIntegration("Web", self.function)
        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name=f"plateseg-{config.stage}-web",
            description="plateseg web UI",
            create_default_stage=False,
        )
        access_logs = logs.LogGroup(
            self, "ApiAccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=removal
        )
        stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=50, burst_limit=100),
        )
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=json.dumps(_ACCESS_LOG_FORMAT)
        )
        client = self.user_pool.add_client(
            "WebClient",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[*config.web_callback_urls, f"{self.api.api_endpoint}/"],
                logout_urls=[*config.web_callback_urls, f"{self.api.api_endpoint}/"],
            ),
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(1),
        )
        authorizer = authorizers.HttpUserPoolAuthorizer(
            "Cognito", self.user_pool, user_pool_clients=[client]
        )
        for path in AUTHORIZED_ROUTES:
            self.api.add_routes(
                path=path,
                methods=[apigw.HttpMethod.ANY],
                integration=integration,
                authorizer=authorizer,
            )

        CfnOutput(self, "WebUrl", value=stage.url)
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=client.user_pool_client_id)
        CfnOutput(self, "SignInDomain", value=domain.base_url())

    def _function(
        self,
        bucket: s3.IBucket,
        database: DatabaseAccess,
        removal: RemovalPolicy,
        state_machine_name: str,
        config: PlatesegConfig,
    ) -> lambda_.DockerImageFunction:
        code = lambda_.DockerImageCode.from_image_asset(
            str(REPO_ROOT),
            file=DOCKERFILE,
            cmd=[WEB_HANDLER],
            exclude=IMAGE_ASSET_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        log_group = logs.LogGroup(
            self, "WebLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=removal
        )
        return lambda_.DockerImageFunction(
            self,
            "Web",
            code=code,
            description=f"plateseg web UI ({WEB_HANDLER})",
            architecture=lambda_.Architecture.X86_64,
            memory_size=1024,
            timeout=Duration.seconds(29),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            vpc=database.vpc,
            vpc_subnets=database.subnets,
            security_groups=[database.security_group],
            environment={
                "PLATESEG_STORE": f"s3://{bucket.bucket_name}",
                "PLATESEG_HOME": "/tmp/plateseg",
                "PLATESEG_STATE_MACHINE_ARN": self._states_arn("stateMachine", state_machine_name),
                # The app runs executions on AWS and accepts only requests whose event
                # carries the API's JWT authorizer claims (never an identity header).
                "PLATESEG_ENGINE": "aws",
                "PLATESEG_WEB_AUTH": "proxy",
                "PLATESEG_WEB_PROXY": "apigateway",
                "PLATESEG_WEB_SECURE_COOKIES": "true",
                # The new-run page's estimate models the deployed Map settings.
                "PLATESEG_RUN_SETTINGS": json.dumps(
                    config.map_settings.model_dump(), sort_keys=True
                ),
                "POWERTOOLS_SERVICE_NAME": "plateseg-web",
                "POWERTOOLS_METRICS_NAMESPACE": "plateseg",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )

    def _states_arn(self, resource: str, name: str) -> str:
        return self.format_arn(
            service="states",
            resource=resource,
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _grant(self, bucket: s3.IBucket, name: str, label: str) -> None:
        """S3 on the prefixes the UI shows or edits; Step Functions on this machine only."""
        fn = self.function
        for prefix in ("experiments/*", "runs/*", "models/*"):
            bucket.grant_read(fn, prefix)
        bucket.grant_put(fn, "models/*")
        bucket.grant_put(fn, "experiments/*/layout.csv")
        statements = [
            ("StartRuns", ["states:StartExecution"], [self._states_arn("stateMachine", name)]),
            (
                "FollowRuns",
                ["states:DescribeExecution", "states:RedriveExecution", "states:ListMapRuns"],
                [self._states_arn("execution", f"{name}:*")],
            ),
            (
                "FollowMapRuns",
                ["states:DescribeMapRun"],
                [self._states_arn("mapRun", f"{name}/{label}:*")],
            ),
        ]
        for sid, actions, resources in statements:
            fn.add_to_role_policy(
                iam.PolicyStatement(sid=sid, actions=actions, resources=resources)
            )
