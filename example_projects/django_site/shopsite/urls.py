from django.contrib import admin
from django.urls import path
from shop import views

urlpatterns = [
    path("admin/", admin.site.urls),  # taskito's pages are at /admin/taskito/
    path("", views.orders, name="orders"),
]
