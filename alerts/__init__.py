"""Alert delivery: alert records from the alerts topic to Slack, PagerDuty, a signed webhook,
Alertmanager and the console — at least once, in order per conflict, never twice per state.

- ``alerts.record``: the SPEC §3 record (``AlertRecord.from_json``);
- ``alerts.receivers``: one module per integration behind ``Receiver``;
- ``alerts.retry``: ``classify(status, headers)`` and the retry loop;
- ``alerts.routing``: the TOML routing file and the ``STAKEWATCH_*`` settings;
- ``alerts.notification_log``: what each receiver was told (``NotificationLog``);
- ``streams.agents.notification_log``: the notification log on a Kafka topic (production);
- ``alerts.dispatcher``: the pipeline the worker drives (``Dispatcher.submit(record, ack)``);
- ``alerts.setup``: ``build_dispatcher(client, notification_log)`` from the environment;
- ``alerts.testing``: fake clock, metrics recorder and fake Slack/PagerDuty servers.

See ``docs/alerts.md``.
"""
