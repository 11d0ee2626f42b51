from django.contrib import admin
from django.contrib.admin import AdminSite
from django.urls import include, path
from djapp import views

from taskito_django import register_taskito_admin

custom_site = AdminSite(name="custom_admin")
register_taskito_admin(custom_site)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("custom-admin/", custom_site.urls),
    path("ops/taskito/", include("taskito_django.urls")),
    path("order/", views.place_order, name="place_order"),
    path("add-async/", views.add_async, name="add_async"),
]
