"""Workflows that train and evaluate together (the demo, the ablation grid): the one place where
`train` and `eval` are both visible; neither of them imports the other."""
