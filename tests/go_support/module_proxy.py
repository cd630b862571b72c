"""Write a file-based Go module proxy serving example.com/greet v1.0.0, and the go.sum
lines for it into an app directory. Usage: module_proxy.py PROXY_DIR APP_DIR"""
import base64
import hashlib
import json
import os
import sys
import zipfile

proxy, app = sys.argv[1], sys.argv[2]
module, version = "example.com/greet", "v1.0.0"
files = {
    "go.mod": "module example.com/greet\n",
    "greet.go": 'package greet\n\n// Hello greets from the proxy.\n'
    'func Hello() string { return "hello from example.com/greet via GOPROXY" }\n',
}

versions = os.path.join(proxy, module, "@v")
os.makedirs(versions)
with open(os.path.join(versions, "list"), "w") as out:
    out.write(version + "\n")
with open(os.path.join(versions, version + ".info"), "w") as out:
    json.dump({"Version": version, "Time": "2024-01-01T00:00:00Z"}, out)
with open(os.path.join(versions, version + ".mod"), "w") as out:
    out.write(files["go.mod"])
with zipfile.ZipFile(os.path.join(versions, version + ".zip"), "w") as archive:
    for name in sorted(files):
        archive.writestr(f"{module}@{version}/{name}", files[name])


def h1(entries):
    """The go command's dirhash: sha256 over `hex(sha256(file))  name` lines, base64."""
    lines = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(entries))
    return "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()


zip_hash = h1([(f"{module}@{version}/{name}", text.encode()) for name, text in files.items()])
mod_hash = h1([("go.mod", files["go.mod"].encode())])
with open(os.path.join(app, "go.sum"), "w") as out:
    out.write(f"{module} {version} {zip_hash}\n{module} {version}/go.mod {mod_hash}\n")
