"""The demo's URLs with authguard's sensitive-action URLs mounted in the ``authguard`` namespace.

Until ``authguard.urls`` includes ``authguard.actions.urls`` itself (one line), the action tests use this
``ROOT_URLCONF``: the demo's own patterns, with the ``authguard/`` include replaced by one that also holds
the action URLs (and the admin's, read again with the action admin registered). Afterwards it is the same
thing (the first match wins).
"""

from django.contrib import admin
from django.urls import include, path

from authguard import urls as authguard_urls
from authguard.actions import admin as actions_admin  # noqa: F401 (registers its ModelAdmins)
from authguard.actions import urls as action_urls
from demo_site import urls as demo_urls

_REPLACED = {
    "authguard/": path(
        "authguard/", include(([*authguard_urls.urlpatterns, *action_urls.urlpatterns], "authguard"))
    ),
    # The admin's URLs are read when they are included: again, now that the action admin is registered.
    "admin/": path("admin/", admin.site.urls),
}
urlpatterns = [_REPLACED.get(str(getattr(p, "pattern", "")), p) for p in demo_urls.urlpatterns]

handler400 = demo_urls.handler400
handler403 = demo_urls.handler403
handler404 = demo_urls.handler404
handler500 = demo_urls.handler500
