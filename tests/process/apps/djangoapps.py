"""A minimal Django project in one module, served through Django's ASGI handler."""

from __future__ import annotations

import asyncio
import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="tests-only",
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


async def hello(request):
    await asyncio.sleep(0)  # an async view, awaited on the worker's loop
    return JsonResponse({"method": request.method, "path": request.path, "pid": os.getpid(),
                         "scheme": request.scheme, "body": request.body.decode()})


async def count(request):
    async def numbers():
        for number in range(3):
            yield f"{number}\n"
    return StreamingHttpResponse(numbers(), content_type="text/plain")


urlpatterns = [path("hello/", hello), path("count/", count)]
application = get_asgi_application()
