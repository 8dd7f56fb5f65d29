# Thin wrappers: every target is `python3 dev.py <target>` (dev.py needs nothing but Python 3.11+).
PYTHON ?= python3

.PHONY: serve test gen bench fmt

serve:
	$(PYTHON) dev.py serve $(ARGS)

test:
	$(PYTHON) dev.py test $(ARGS)

gen:
	$(PYTHON) dev.py gen

bench:
	$(PYTHON) dev.py bench $(ARGS)

fmt:
	$(PYTHON) dev.py fmt
