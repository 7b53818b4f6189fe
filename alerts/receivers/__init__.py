"""Receivers: one module per integration, all behind ``Receiver`` (``name``, ``deliver``)."""

from alerts.receivers.alertmanager import AlertmanagerReceiver
from alerts.receivers.base import Delivery, Receiver
from alerts.receivers.console import ConsoleReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from alerts.receivers.slack import SlackReceiver
from alerts.receivers.webhook import WebhookReceiver, webhook_id

__all__ = [
    "AlertmanagerReceiver",
    "ConsoleReceiver",
    "Delivery",
    "PagerDutyReceiver",
    "Receiver",
    "SlackReceiver",
    "WebhookReceiver",
    "webhook_id",
]
