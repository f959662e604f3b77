"""One folder per study made with the trainer and the toolkit (docs/design.md, "Layout"); nothing in the product imports a study."""
