"""source: register a lab's own corpus (files, a directory or a glob) as a source artifact."""
