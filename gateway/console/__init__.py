"""The operator console at ``/console``: pages for the staff who run the campaign (reviewers, support, analysts,
auditors, admins), server-rendered in Chinese first, English switchable (docs/console.md).

``routes.py`` lists the pages; ``page.py`` puts each behind a session, a CSRF check and its role (``roles.py``);
``staff.py`` and ``session.py`` are the accounts and their sessions; one module per page (``today``, ``held``,
``lookup``, ``cases``, ``reports``, ``channels``, ``auditlog``); ``charts.py`` draws SVG on the server.
"""
