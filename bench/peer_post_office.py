"""The peer: django-post_office with its own SQLite database, run in a child process.

Same messages as docmail (template from bench.material, a 60 KB PDF and an 8 KB
XML per email), same SMTP server. Its SQLite gets the durability settings docmail
uses (WAL, synchronous=NORMAL) so the comparison is about the tools, not the disk.
Enqueue is ``mail.send`` per email, as post_office's documentation shows;
delivery is what its ``send_queued_mail`` command runs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

from bench import material
from bench.procmem import peak_rss_mb


def _configure(port: int, directory: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / "post_office.sqlite3"),
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                    "timeout": 30,  # a sender and an enqueuer at once (pipelined)
                },
            }
        },
        INSTALLED_APPS=["django.contrib.contenttypes", "post_office"],
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True},
            {
                "BACKEND": "post_office.template.backends.post_office.PostOfficeTemplates",
                "APP_DIRS": True,
                "DIRS": [],
                "OPTIONS": {"context_processors": []},
            },
        ],
        MEDIA_ROOT=str(directory / "media"),
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_USE_TLS=False,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        POST_OFFICE={
            "BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},
            "LOG_LEVEL": 0,
            "BATCH_SIZE": 100,
        },
        LOGGING_CONFIG=None,
    )
    django.setup()
    logging.getLogger("post_office").setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _sender(lockfile: str, processes: int, count: int, done: Any) -> None:
    """post_office's sender kept running (as its Celery or uWSGI integrations do)."""
    from post_office import mail
    from post_office.models import Email

    while Email.objects.filter(status=0).count() < count:  # STATUS.sent
        mail.send_queued_mail_until_done(lockfile=lockfile, processes=processes)
        time.sleep(0.002)
    done.put(time.time())


def run(
    port: int, count: int, directory: str, processes: int = 1, pipelined: bool = False
) -> dict[str, Any]:
    """Enqueue ``count`` emails and deliver them with ``processes`` sending processes.

    Sequential: all enqueued, then ``send_queued_mail``. Pipelined: the sender is
    already looping while the emails are enqueued; end-to-end is then the time
    from the first ``mail.send`` to the last email sent.
    """
    workdir = Path(directory)
    _configure(port, workdir)
    from django.core.files.base import ContentFile
    from django.db import connections
    from post_office import mail
    from post_office.models import Email, EmailTemplate

    template = EmailTemplate.objects.create(
        name="factura",
        subject=material.SUBJECT,
        content=material.BODY_TEXT,
        html_content=material.BODY_HTML,
    )
    lockfile = str(workdir / "post_office")
    sender, done = None, None
    if pipelined:
        connections.close_all()  # the forked sender opens its own
        ctx = mp.get_context("fork")
        done = ctx.Queue()
        sender = ctx.Process(target=_sender, args=(lockfile, processes, count, done))
        sender.start()
    started = time.perf_counter()
    started_at = time.time()
    for index in range(count):
        mail.send(
            [material.RECIPIENT],
            material.SENDER,
            template=template,
            context=material.context(index),
            attachments={
                f"{material.number(index)}.pdf": ContentFile(material.pdf_for(index)),
                f"{material.number(index)}.xml": ContentFile(material.xml_for(index)),
            },
            priority="medium",
        )
    enqueue_seconds = time.perf_counter() - started
    if sender is not None and done is not None:
        finished_at = done.get(timeout=3600)
        sender.join(30)
        delivery_seconds = finished_at - started_at - enqueue_seconds  # the part after enqueue
    else:
        started = time.perf_counter()
        mail.send_queued_mail_until_done(lockfile=lockfile, processes=processes)
        delivery_seconds = time.perf_counter() - started
    sent = Email.objects.filter(status=0).count()  # STATUS.sent
    return {
        "enqueue_seconds": enqueue_seconds,
        "delivery_seconds": delivery_seconds,
        "sent": sent,
        "peak_rss_mb": peak_rss_mb(),
    }
