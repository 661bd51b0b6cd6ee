"""Automation's pure logic: auto-send policy, cron schedules, statements, reminders.

Nothing here does I/O; the services (``docmail.services.automation*``) load rows,
call these functions and write the outcome.
"""
