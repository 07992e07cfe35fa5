# nbgrader settings for every server the hub starts (copied to /etc/jupyter/ in the lab and grader
# images; the integration tests point JUPYTER_CONFIG_PATH here). The course root's own
# nbgrader_config.py, read after this one, adds the grader's settings for the course service.
import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads the file)

c.CourseDirectory.course_id = os.environ.get("TECHDAY_COURSE_ID", "techday")
c.Exchange.root = os.environ.get("TECHDAY_EXCHANGE", "/srv/nbgrader/exchange")

# Every account's server runs as a Unix user of its own (techday.hub.config.apply_identity), and the course
# service as the grader: these two steps close each submission to everyone but its owner and the
# grader, keep the course's folder in the exchange from being renamed or made by a trainee, and
# collect from each student only what their own uid submitted (techday/hub/exchange.py). Collect
# reads the hub's accounts file ($TECHDAY_USERS_FILE) to know each student's uid.
c.ExchangeFactory.release_assignment = "techday.hub.exchange.ExchangeReleaseAssignment"
c.ExchangeFactory.submit = "techday.hub.exchange.ExchangeSubmit"
# Fetching a lab or its feedback: nbgrader's, its refusals in the trainee's language.
c.ExchangeFactory.fetch_assignment = "techday.hub.exchange.ExchangeFetchAssignment"
c.ExchangeFactory.fetch_feedback = "techday.hub.exchange.ExchangeFetchFeedback"
c.ExchangeFactory.collect = "techday.hub.exchange.ExchangeCollect"
# release_feedback leaves out (and names) a trainee whose feedback lacks the secret their own entry held,
# where nbgrader stops releasing for everyone.
c.ExchangeFactory.release_feedback = "techday.hub.exchange.ExchangeReleaseFeedback"

# The hub's user name is the trainee's nbgrader identity. Not for the course service, whose collect
# must gather every student.
if os.environ.get("JUPYTERHUB_USER") and not os.environ.get("JUPYTERHUB_SERVICE_NAME"):
    c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
