"""Turn `terraform show -json` plans into a Markdown review with a risk section on top.

`model` reads a plan, `diff` lists the attributes a change touches (sensitive values
masked), `iam` compares policy documents grant by grant, `rules` decides what is risky,
`acknowledge` knows which high risks a reviewer accepted, `report` writes the Markdown.
"""
