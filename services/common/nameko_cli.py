"""``nameko`` without eventlet's deprecation banner: ``python -m services.common.nameko_cli run ...``.

The same command line as the ``nameko`` script (run, shell, show-config), used by
scripts/supervisord.conf and the docs; services.common.warnings_filter says why it is needed.
"""

from services.common.warnings_filter import silence_eventlet_banner

silence_eventlet_banner()

from nameko.cli.main import main  # noqa: E402  (after the filter: nameko imports eventlet)

if __name__ == "__main__":
    main()
