"""Local fakes of what playbooks act on and check: HTTP targets, Heroku, Kubernetes."""
