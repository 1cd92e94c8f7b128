"""The unmodified `marathon` 0.13.0 client against a Gantry master with authentication on:
HTTP Basic and Marathon's token= credentials work, wrong or missing ones raise the client's own
error for 401, and a principal without write permission gets its 403. Run by
cli/tests/python_clients.rs as: python marathon_auth.py URL USER PASSWORD READER_TOKEN."""
import collections
import collections.abc
import sys

# marathon 0.13.0 imports these from `collections` (removed in Python 3.10): spec §4.2's shim.
for name in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable"):
    setattr(collections, name, getattr(collections.abc, name))

from marathon import MarathonApp, MarathonClient  # noqa: E402
from marathon.exceptions import MarathonHttpError  # noqa: E402

url, user, password, reader_token = sys.argv[1:5]

admin = MarathonClient(url, username=user, password=password)
app = admin.create_app("py-auth", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=1))
assert app.id == "/py-auth", app.id
assert "/py-auth" in [a.id for a in admin.list_apps()]
assert admin.get_app("py-auth").instances == 1


def refused(client, call, status):
    try:
        call(client)
    except MarathonHttpError as e:
        assert e.status_code == status, (e.status_code, e.error_message)
        return e
    raise AssertionError("expected HTTP %d" % status)


e = refused(MarathonClient(url, username=user, password="wrong"), lambda c: c.list_apps(), 401)
assert e.error_message == "Invalid username or password.", e.error_message
refused(MarathonClient(url), lambda c: c.list_apps(), 401)
reader = MarathonClient(url, auth_token=reader_token)
assert "/py-auth" in [a.id for a in reader.list_apps()], "token= credentials read"
e = refused(reader, lambda c: c.create_app("py-no", MarathonApp(cmd="true", mem=16, cpus=0.1)), 403)
assert e.error_message == "Not Authorized to perform this action!", e.error_message
# The client sends force=False; its create deployment may still run (Marathon 409s then too).
admin.delete_app("py-auth", force=True)
assert "/py-auth" not in [a.id for a in admin.list_apps()]
print("marathon client: ok")
