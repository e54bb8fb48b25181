"""nbgrader's settings for every user of the hub (deployed as /etc/jupyter/nbgrader_config.py).

Students and the instructor share one exchange; its root is made by root with mode 1777
(docs/jupyterhub.md). The test points NBGRADER_EXCHANGE_ROOT at a temporary one.
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = "nn-course"
