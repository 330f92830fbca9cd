"""What the tool writes: templates, the reviewer's annotated copy, text dumps of workbooks."""
