"""Alembic environment for noim.

The database comes from an injected connection (``noim db upgrade``, tests),
else from ``NOIM_DATABASE_URL`` (the variable the noim CLI reads), else from
``sqlalchemy.url`` in alembic.ini.

A downgrade that would drop a table or column holding rows refuses unless given
``-x allow_data_loss=true`` (``noim.db.data_loss``, called by every revision's
``downgrade()``).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

import noim.db.models  # noqa: F401  (register every table on the metadata)
from noim.db import migrate
from noim.db.base import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_offline() -> None:
    context.configure(
        url=migrate.url_for_alembic(config),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=migrate.include_object,
        render_item=migrate.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate.configure_context(context, connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with migrate.migration_connection(migrate.url_for_alembic(config)) as connection:
        migrate.configure_context(context, connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
