"""Write README.md from nbs/index.ipynb without Quarto: markdown cells as they are, code cells as
Python blocks followed by their text or Markdown output; cells marked `#| hide` are left out."""
import json
import sys
from pathlib import Path

def cell_src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

def render(nb: dict) -> str:
    parts = []
    for cell in nb["cells"]:
        src = cell_src(cell)
        if src.lstrip().startswith(("#| hide", "#|hide")): continue
        if cell["cell_type"] == "markdown":
            parts.append(src.strip())
            continue
        code = "\n".join(l for l in src.splitlines() if not l.startswith("#|")).strip()
        echo = "#| echo: false" not in src
        if code and echo: parts.append(f"```python\n{code}\n```")
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/markdown" in data: parts.append("".join(data["text/markdown"]).strip())
            elif "text/plain" in data: parts.append("```\n" + "".join(data["text/plain"]).rstrip() + "\n```")
            elif out.get("output_type") == "stream": parts.append("```\n" + "".join(out["text"]).rstrip() + "\n```")
    return "\n\n".join(p for p in parts if p) + "\n"

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    nb = json.loads((root / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    out = root / "README.md"
    text = render(nb)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    if "--check" in sys.argv: print("README.md written from nbs/index.ipynb")
