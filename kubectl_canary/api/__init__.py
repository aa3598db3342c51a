"""The Canary / MetricTemplate API: model, parsing with defaults, validation, status rendering.

- model.py      the typed dataclasses and constants everything else uses
- parse.py      documents -> model (parse_canary, parse_metric_template, parse_status,
                parse_request); raises InvalidResource listing every problem
- validate.py   every problem of a document at once (validate_canary, validate_metric_template)
- render.py     model -> documents (render_status, render_request, promoted_condition)
- convert.py    Flagger flagger.app/v1beta1 -> ours (convert_flagger, ...)
- durations.py  "30s" / "1h30m" <-> seconds
- config_refs.py  the ConfigMaps/Secrets a pod template references; renaming them to and from
                the primary's `-primary` copies (agent and offboard)
- decode.py, reader.py  the schema-level decoding behind parse and validate
- errors.py     Problem and InvalidResource
"""
