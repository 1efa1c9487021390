"""Monitoring: one CloudWatch dashboard and alarms that notify an SNS topic.

Dashboard rows: executions (started, succeeded, failed, timed out, aborted); Map Run
child executions (the Distributed Map's children report under the state machine ARN
suffixed ``/<Map label>``, so their failures are the failed batches); Lambda errors,
throttles, duration (p50/p95/max) and concurrency per function; RDS connections and CPU
(when the stack created the database).

Alarms (each to the topic, ``alarm_email`` subscribed if set): any failed or timed-out
execution, any failed Map Run child, Segment throttles (reserved concurrency too low for
the Map concurrency), Lambda errors per function, Segment p95 duration above 80 % of its
timeout, and RDS connections near the proxy's ceiling.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import PlatesegConfig

__all__ = ["MonitoringStack"]

_PERIOD = Duration.minutes(5)
#: Alarm when the database has this many connections (t4g.micro allows ~80).
_DB_CONNECTIONS_ALARM = 60


class MonitoringStack(Stack):
    """Dashboard and alarms of one stage.

    Parameters
    ----------
    scope, construct_id
        As for any construct.
    config : PlatesegConfig
        ``stage``, ``alarm_email``, ``segment_timeout_seconds``.
    state_machine : aws_stepfunctions.IStateMachine
    state_machine_name : str
        Its fixed name; the Map Run children's metrics are keyed by ``<arn>/<label>``.
    map_label : str
        ``Label`` of the Distributed Map state.
    functions : dict of str to aws_lambda.IFunction
        Every plateseg function by display name.
    database : aws_rds.IDatabaseInstance or None
        The created instance (``None`` with an existing database).
    **kwargs
        Passed to :class:`aws_cdk.Stack`.

    Attributes
    ----------
    topic : aws_sns.Topic
    alarms : list of aws_cloudwatch.Alarm
    dashboard : aws_cloudwatch.Dashboard
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatesegConfig,
        state_machine: sfn.IStateMachine,
        state_machine_name: str,
        map_label: str,
        functions: dict[str, lambda_.IFunction],
        database: rds.IDatabaseInstance | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="plateseg alarms")
        # CloudWatch alarms publish to an encrypted topic only if the key lets them.
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self,
            "Alarms",
            display_name=f"plateseg {config.stage} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []

        children = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=f"{state_machine_name}/{map_label}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

        def child_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/States",
                metric_name=name,
                dimensions_map={"StateMachineArn": children},
                statistic="Sum",
                period=_PERIOD,
                label=f"batches {name.removeprefix('Executions').lower()}",
            )

        executions = {
            "started": state_machine.metric_started(period=_PERIOD),
            "succeeded": state_machine.metric_succeeded(period=_PERIOD),
            "failed": state_machine.metric_failed(period=_PERIOD),
            "timed out": state_machine.metric_timed_out(period=_PERIOD),
            "aborted": state_machine.metric_aborted(period=_PERIOD),
        }
        for label, metric in executions.items():
            executions[label] = metric.with_(label=label)
        self._alarm("ExecutionsFailed", executions["failed"], 1, "a run failed")
        self._alarm("ExecutionsTimedOut", executions["timed out"], 1, "a run timed out")
        self._alarm(
            "MapRunChildFailures",
            child_metric("ExecutionsFailed"),
            1,
            "segment batches failed (inside the tolerated percentage or not)",
        )

        rows: list[list[cloudwatch.IWidget]] = [
            [
                cloudwatch.GraphWidget(
                    title="Executions", left=list(executions.values()), width=12
                ),
                cloudwatch.GraphWidget(
                    title="Map Run child executions (batches)",
                    left=[child_metric(n) for n in ("ExecutionsSucceeded", "ExecutionsFailed")],
                    right=[child_metric("ExecutionsTimedOut"), child_metric("ExecutionsAborted")],
                    width=12,
                ),
            ]
        ]
        for name, fn in functions.items():
            errors = fn.metric_errors(period=_PERIOD, statistic="Sum")
            throttles = fn.metric_throttles(period=_PERIOD, statistic="Sum")
            self._alarm(f"{name}Errors", errors, 1, f"{name} function errors")
            if name == "Segment":
                self._alarm("SegmentThrottles", throttles, 1, "Segment throttled")
                self._alarm(
                    "SegmentDurationNearTimeout",
                    fn.metric_duration(period=_PERIOD, statistic="p95"),
                    0.8 * config.segment_timeout_seconds * 1000,
                    "Segment p95 duration above 80 % of its timeout",
                )
            concurrency = fn.metric("ConcurrentExecutions", period=_PERIOD, statistic="Maximum")
            rows.append(
                [
                    cloudwatch.GraphWidget(
                        title=f"{name}: errors and throttles",
                        left=[errors, throttles],
                        width=8,
                    ),
                    cloudwatch.GraphWidget(
                        title=f"{name}: duration (ms)",
                        left=[
                            fn.metric_duration(period=_PERIOD, statistic=s)
                            for s in ("p50", "p95", "Maximum")
                        ],
                        width=8,
                    ),
                    cloudwatch.GraphWidget(
                        title=f"{name}: concurrency", left=[concurrency], width=8
                    ),
                ]
            )
        if database is not None:
            connections = database.metric_database_connections(period=_PERIOD, statistic="Maximum")
            self._alarm(
                "DatabaseConnections",
                connections,
                _DB_CONNECTIONS_ALARM,
                "database connections near the instance limit",
            )
            rows.append(
                [
                    cloudwatch.GraphWidget(title="RDS connections", left=[connections], width=12),
                    cloudwatch.GraphWidget(
                        title="RDS CPU (%)",
                        left=[database.metric_cpu_utilization(period=_PERIOD)],
                        width=12,
                    ),
                ]
            )
        rows.append(
            [
                cloudwatch.AlarmStatusWidget(
                    title="Alarms", alarms=list(self.alarms), width=24, height=4
                )
            ]
        )
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"plateseg-{config.stage}", widgets=rows
        )
        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=f"plateseg-{config.stage}")

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, what: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"plateseg: {what}",
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
